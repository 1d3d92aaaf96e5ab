"The offline dataset builders: same bytes when rebuilt, the promised layouts, the dirt in `shapes`, the font check."
import csv, hashlib, re
from pathlib import Path
import numpy as np
import pytest
from PIL import Image, ImageFont
import course_lib.offline_images as off_img, course_lib.offline_text as off_txt, course_lib.offline_tables as off_tab
from course_lib.download import OFFLINE_BUILDERS

NAMES = ['digits', 'rendered_digits', 'shapes', 'stdlib_corpus', 'human_numbers', 'reviews', 'auction', 'ratings',
         'ring', 'grace_hopper']

def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob('*')):
        if p.is_file(): h.update(p.relative_to(root).as_posix().encode() + b'\0' + p.read_bytes())
    return h.hexdigest()

@pytest.fixture(scope='module')
def built(tmp_path_factory):
    "Every dataset built once at `tiny` (shared by the tests below)."
    root = tmp_path_factory.mktemp('built')
    return {n: b(root/n, 'tiny') for n, b in OFFLINE_BUILDERS.items()}

def test_registry_names_and_docstrings():
    assert list(OFFLINE_BUILDERS) == NAMES
    for name, b in OFFLINE_BUILDERS.items():
        assert b.__name__ == f'build_{name}'
        assert b.__doc__.startswith(('REAL', 'GENERATED')), name

@pytest.mark.parametrize('name', NAMES)
def test_rebuild_gives_same_bytes(name, built, tmp_path):
    again = OFFLINE_BUILDERS[name](tmp_path/name, 'tiny')
    assert again == tmp_path/name
    assert tree_hash(again) == tree_hash(built[name])

@pytest.mark.parametrize('name', ['shapes', 'auction', 'ratings', 'ring'])
def test_seed_changes_generated_data(name, built, tmp_path):
    assert tree_hash(OFFLINE_BUILDERS[name](tmp_path/name, 'tiny', seed=1)) != tree_hash(built[name])

def test_unknown_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match='tiny, small, full'): off_tab.build_ring(tmp_path/'ring', 'huge')

def _count(root, pattern): return sum(1 for p in root.rglob(pattern) if p.is_file())

def test_digits_layout_and_pixels(built):
    root = built['digits']
    for split in ('train', 'valid'): assert sorted(p.name for p in (root/split).iterdir()) == [str(d) for d in range(10)]
    n_train, n_valid = _count(root/'train', '*.png'), _count(root/'valid', '*.png')
    assert n_train + n_valid == 1000 and n_valid == 200
    ims, labels = off_img.load_digits_arrays()
    assert ims.shape == (1797, 8, 8) and ims.dtype == np.uint8 and ims.max() == 255
    for p in list((root/'train'/'7').iterdir())[:5]:
        assert np.array_equal(np.asarray(Image.open(p)), ims[int(p.stem)]) and labels[int(p.stem)] == 7

def test_digits_match_scikit_learn():
    from sklearn.datasets import load_digits
    ims, labels = off_img.load_digits_arrays()
    d = load_digits()
    assert np.array_equal(labels, d.target)
    assert np.abs(ims - d.images * 255 / 16).max() <= 0.5

def test_ink_check_skips_fonts_without_digits():
    fonts_dir = off_img._font_dir()
    empty = ImageFont.truetype(str(fonts_dir/'DejaVuSansDisplay.ttf'), 32)   # has no digit glyphs
    assert off_img.glyph_ink(empty, '5') == 0
    assert off_img.glyph_ink(ImageFont.truetype(str(fonts_dir/'DejaVuSans.ttf'), 32), '5') > 0.01
    assert not off_img.font_draws_digits(fonts_dir/'DejaVuSansDisplay.ttf')     # draws nothing
    assert not off_img.font_draws_digits(fonts_dir/'LastResortHE-Regular.ttf')  # one box for every digit
    assert not off_img.font_draws_digits(fonts_dir/'cmsy10.ttf')                # symbols at the digit codes
    assert off_img.font_draws_digits(fonts_dir/'DejaVuSans.ttf')
    fonts = off_img.digit_fonts()
    assert len(fonts) >= 10 and fonts == tuple(sorted(fonts))
    for f in fonts:                                                           # every font kept draws every digit
        font = ImageFont.truetype(str(f), 32)
        assert min(off_img.glyph_ink(font, str(d)) for d in range(10)) > 0.005, f.name

def test_rendered_digits_look_like_mnist(built):
    root = built['rendered_digits']
    files = sorted(root.rglob('*.png'))
    assert len(files) == 400 and _count(root/'valid', '*.png') == 80
    x = np.stack([np.asarray(Image.open(p)) for p in files[:100]])
    assert x.shape == (100, 28, 28) and np.median(x) < 20 and x.max() > 200
    assert all(x[i].astype(float).sum() > 255 * 15 for i in range(len(x)))   # every picture has a visible digit

def _manifest(root):
    with open(root/'MANIFEST.csv', newline='') as f: return list(csv.DictReader(f))

def test_shapes_mislabelled_and_corrupt_files(built):
    root = built['shapes']
    rows = _manifest(root)
    assert {r['path'] for r in rows} == {p.relative_to(root).as_posix() for p in root.rglob('*.png')}
    for r in rows: assert r['given_label'] == r['path'].split('/')[1]          # given label = folder
    pics = [r for r in rows if r['corrupt'] == '0']
    wrong = [r for r in pics if r['given_label'] != r['true_label']]
    corrupt = [r for r in rows if r['corrupt'] == '1']
    assert len(wrong) >= 3 and all(r['path'].startswith('train/') for r in wrong)
    assert len(corrupt) == 3
    sizes = sorted((root/r['path']).stat().st_size for r in corrupt)
    assert sizes[0] == 0                                                        # the empty file
    assert (root/next(r['path'] for r in corrupt if r['true_label'])).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'  # truncated PNG
    assert any(b'text' in (root/r['path']).read_bytes() for r in corrupt)       # a text file
    for r in corrupt:
        with pytest.raises(Exception):
            with Image.open(root/r['path']) as im: im.load()
    for r in pics[:30]:
        with Image.open(root/r['path']) as im: assert im.size == (32, 32) and im.mode == 'RGB'

def test_stdlib_corpus_is_parsed_not_imported(built, monkeypatch):
    import sys
    assert 'antigravity' not in sys.modules
    text = (built['stdlib_corpus']/'train.txt').read_text() + (built['stdlib_corpus']/'valid.txt').read_text()
    assert len(text.split()) > 2000 and '>>>' not in text
    assert off_txt.english_paragraphs('x = 1\n\nSee also: foo, bar.') == []
    assert off_txt.english_paragraphs('Return the value of the key if it is in the table.') == \
        ['Return the value of the key if it is in the table.']
    assert all('site-packages' not in p.parts for p in off_txt.stdlib_sources())

def test_human_numbers(built):
    assert off_txt.number_words(8102) == 'eight thousand one hundred two'
    assert off_txt.number_words(0) == 'zero' and off_txt.number_words(70) == 'seventy' and off_txt.number_words(115) == 'one hundred fifteen'
    with pytest.raises(ValueError): off_txt.number_words(1_000_000)
    tr = (built['human_numbers']/'train.txt').read_text().splitlines()
    va = (built['human_numbers']/'valid.txt').read_text().splitlines()
    assert tr[0] == 'one' and len(tr) == 1000 and va[0] == 'one thousand one' and len(va) == 300

def test_reviews_layout_and_labels(built):
    root = built['reviews']
    for split, n in (('train', 150), ('test', 100)):
        for label in ('pos', 'neg'): assert _count(root/split/label, '*.txt') == n
    assert _count(root/'unsup', '*.txt') == 200
    d = off_img.Draws(np.random.default_rng(0))
    for _ in range(200):                       # single-opinion reviews: the label follows the rules
        text, y = off_txt.review_text(d)
        ops = [s for s in text.split('. ') if not any(w in s for w in ('directed', 'runs about', 'based on', 'came out', 'picked', 'watched it', 'saw it', 'played by'))]
        if len(ops) != 1: continue
        s = ops[0].split(', but ')[-1].split(', ')[-1]          # the part of a contrast that counts
        words = set(re.findall(r'\w+', s))
        positive = bool(words & set(off_txt._GOOD + ('liked', 'loved', 'enjoyed'))) or 'not hate' in s or 'not mind' in s
        negated = bool(words & {'not', 'never', 'hardly'}) and 'did not' not in s
        assert y == int(positive != negated), text

def test_auction_table(built):
    import pandas as pd
    df = pd.read_csv(built['auction']/'Train.csv', low_memory=False)
    assert len(df) == 6000
    for c in ('SalesID', 'SalePrice', 'saledate', 'YearMade', 'ModelID', 'fiModelDesc', 'fiProductClassDesc',
              'ProductSize', 'state', 'Enclosure', 'MachineHoursCurrentMeter'): assert c in df.columns
    assert 0.05 < (df.YearMade == 1000).mean() < 0.13 and df.isna().any().sum() >= 5
    year = pd.to_datetime(df.saledate, format='%m/%d/%Y %H:%M').dt.year
    assert np.polyfit(year, np.log(df.SalePrice), 1)[0] > 0.02          # prices drift up

def test_ratings_follow_the_truth(built):
    import pandas as pd
    root = built['ratings']
    r = pd.read_csv(root/'u.data', sep='\t', names=['user', 'item', 'rating', 'ts'])
    assert len(r) == 4000 and r.rating.between(1, 5).all() and r.groupby('user').size().min() >= 20
    assert not r.duplicated(['user', 'item']).any()
    t = np.load(root/'truth.npz')
    assert set(t.files) >= {'user_factors', 'item_factors', 'user_bias', 'item_bias', 'global_mean'}
    u, i = r.user.values - 1, r.item.values - 1
    pred = t['global_mean'] + t['user_bias'][u] + t['item_bias'][i] + (t['user_factors'][u] * t['item_factors'][i]).sum(1)
    assert np.corrcoef(pred, r.rating)[0, 1] > 0.7
    titles = (root/'u.item').read_text().splitlines()
    assert len(titles) == 200 and titles[0].startswith('1|') and len(titles[0].split('|')) == 24

def test_ring_and_photo(built):
    z = np.load(built['ring']/'ring.npz')
    assert z['x'].shape == (2000, 2) and z['x'].dtype == np.float32 and set(z['mode']) == set(range(8))
    centres = np.stack([z['x'][z['mode'] == m].mean(0) for m in range(8)])
    assert np.allclose(np.linalg.norm(centres, axis=1), 2, atol=0.02)
    assert Image.open(built['grace_hopper']/'grace_hopper.jpg').size == (512, 600)
