"""The full-data path, executed without the internet: for each dataset in the registry, a small archive with the
real archive's exact layout (folder names, file names, label files, csv columns) is served from 127.0.0.1 (the
registry entry's URL, size and checksum are overridden, everything else is the real entry), then
get_dataset (preset full) -> fetch -> check -> extract -> layout fix-up -> the loading code the lessons use."""
import dataclasses, hashlib, http.server, io, socketserver, tarfile, threading, zipfile
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
import course_lib.core as core
import course_lib.download as dl
from course_lib.archive import DataError
from course_lib.download import get_dataset, build_offline, is_complete
from course_lib.data import get_image_files, load_image_tensors, ImageFileDataset, DataLoaders

# ---------------------------------------------------------------- a local server and a full-mode data folder
SERVED = {}

class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = SERVED.get(self.path)
        if body is None: return self.send_error(404)
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)

@pytest.fixture(scope='module')
def server():
    srv = socketserver.ThreadingTCPServer(('127.0.0.1', 0), _Handler); srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    yield f'http://127.0.0.1:{srv.server_address[1]}'
    srv.shutdown(); srv.server_close(); t.join(5)

@pytest.fixture
def full(tmp_path, monkeypatch):
    "COURSE_SIZE=full with an empty data folder."
    monkeypatch.setenv('COURSE_DATA', str(tmp_path/'data')); monkeypatch.setenv('COURSE_SIZE', 'full')
    core.get_settings(reload=True)
    yield tmp_path/'data'
    monkeypatch.undo(); core.get_settings(reload=True)

def publish(server, monkeypatch, name, body: bytes):
    "Serve `body` under the entry's real archive name and point the real registry entry at it (URL, size, sha256)."
    src = dl.DATASETS[name]
    SERVED['/' + src.archive_name] = body
    monkeypatch.setitem(dl.DATASETS, name, dataclasses.replace(
        src, url=f'{server}/{src.archive_name}', size=len(body), sha256=hashlib.sha256(body).hexdigest(), md5=None))

def tgz(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tf:
        for name in sorted({str(p) for f in files for p in Path(f).parents if str(p) != '.'}):   # folder members, as tar writes them
            ti = tarfile.TarInfo(name); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; tf.addfile(ti)
        for name, body in files.items():
            ti = tarfile.TarInfo(name); ti.size = len(body); tf.addfile(ti, io.BytesIO(body))
    return buf.getvalue()

def zipped(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as zf:
        for name, body in files.items(): zf.writestr(name, body)
    return buf.getvalue()

def image_bytes(size, mode='L', fmt='PNG', seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == 'L' else (size[1], size[0], 3)
    buf = io.BytesIO(); Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, fmt); return buf.getvalue()

def tree(folder): return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob('*') if p.name != dl.MARKER)

# ---------------------------------------------------------------- image datasets the lessons load in full
def test_digits_full_is_mnist_png_and_loads_like_the_lessons(server, full, monkeypatch):
    "mnist_png.tgz: mnist_png/training/<digit>/<n>.png and mnist_png/testing/... (28x28 grey PNGs)."
    files = {f'mnist_png/{split}/{d}/{i * 10 + d}.png': image_bytes((28, 28), seed=i * 10 + d)
             for split, n in (('training', 3), ('testing', 2)) for d in range(10) for i in range(n)}
    publish(server, monkeypatch, 'digits', tgz(files))
    path = get_dataset('digits')
    assert path == full/'full'/'digits' and is_complete(path)
    assert sorted(p.name for p in path.iterdir() if p.name != dl.MARKER) == ['train', 'valid']   # training/testing renamed
    xt, yt, classes = load_image_tensors(path, 'train')                      # lessons 03, 04, 10, 11
    xv, yv, _ = load_image_tensors(path, 'valid')
    assert classes == [str(d) for d in range(10)] and xt.shape == (30, 1, 28, 28) and xv.shape == (20, 1, 28, 28)
    assert xt.dtype == torch.float32 and 0 <= xt.min() and xt.max() <= 1
    x37, y37, c37 = load_image_tensors(path, 'train', classes=['3', '7'])   # lesson 02
    assert c37 == ['3', '7'] and x37.shape == (6, 1, 28, 28) and sorted(y37.tolist()) == [0, 0, 0, 1, 1, 1]
    x20, _, _ = load_image_tensors(path, 'valid', size=20)                  # lesson 04c
    assert x20.shape == (20, 1, 20, 20)
    xb, yb = DataLoaders.from_tensors(xt, yt, xv, yv, bs=8, classes=classes).one_batch()
    assert xb.shape == (8, 1, 28, 28) and yb.shape == (8,)
    assert get_dataset('digits') == path                                   # fetched once, then from the folder
    from collections import Counter                                          # lesson 01's look at the folders
    counts = Counter((f.parent.parent.name, f.parent.name) for f in get_image_files(path))
    assert sorted({split for split, _ in counts}) == ['train', 'valid'] and sorted({l for _, l in counts}) == classes

IMAGENETTE = ['n01440764', 'n02102040', 'n02979186', 'n03000684', 'n03028079', 'n03394916', 'n03417042', 'n03425413',
              'n03445777', 'n03888605']

def test_imagenette_full_loads_like_lesson_04c(server, full, monkeypatch):
    "imagenette2-160.tgz: imagenette2-160/{train,val}/<wnid>/*.JPEG (shorter side 160, a few grey) + noisy_imagenette.csv."
    files = {}
    for k, wnid in enumerate(IMAGENETTE):
        for i in range(2):
            files[f'imagenette2-160/train/{wnid}/{wnid}_{1000 + i}.JPEG'] = image_bytes((213, 160), 'RGB', 'JPEG', seed=k * 10 + i)
        files[f'imagenette2-160/val/{wnid}/ILSVRC2012_val_000{k:05d}.JPEG'] = image_bytes((160, 240), 'RGB', 'JPEG', seed=100 + k)
    files[f'imagenette2-160/train/{IMAGENETTE[0]}/{IMAGENETTE[0]}_grey.JPEG'] = image_bytes((160, 160), 'L', 'JPEG', seed=7)
    files['imagenette2-160/noisy_imagenette.csv'] = b'path,noisy_labels_0,noisy_labels_1,is_valid\n'
    publish(server, monkeypatch, 'imagenette', tgz(files))
    ipath = get_dataset('imagenette')
    assert sorted(p.name for p in ipath.iterdir() if p.is_dir()) == ['train', 'valid']   # val renamed
    # the lesson's code, as written in 04c_transfer
    files = get_image_files(ipath, folders=['train', 'valid'])
    iclasses = sorted({f.parent.name for f in files})
    split = lambda name: ImageFileDataset([f for f in files if f.parent.parent.name == name], iclasses, size=160, mode='RGB')
    idls = DataLoaders.from_dsets(split('train'), split('valid'), bs=4, classes=iclasses, num_workers=0)
    assert iclasses == IMAGENETTE and len(idls.train.dataset) == 21 and len(idls.valid.dataset) == 10
    xb, yb = idls.one_batch()
    assert xb.shape == (4, 3, 160, 160) and yb.dtype == torch.long
    xv, yv = next(iter(idls.valid))
    assert xv.shape == (4, 3, 160, 160) and yv.tolist() == [0, 1, 2, 3]
    grey = next(f for f in files if f.stem.endswith('grey'))
    assert ImageFileDataset([grey], iclasses, size=160, mode='RGB')[0][0].shape == (3, 160, 160)   # grey -> 3 channels
    # and fastai's loader, as lessons 04c and 06 call it on the same folder
    from fastai.vision.all import ImageDataLoaders, Resize
    fdls = ImageDataLoaders.from_folder(ipath, valid='valid', item_tfms=Resize(64), bs=4, num_workers=0)
    assert list(fdls.vocab) == IMAGENETTE and len(fdls.train_ds) == 21 and len(fdls.valid_ds) == 10
    assert fdls.one_batch()[0].shape == (4, 3, 64, 64)

def test_pets_full_layout_and_labels_from_file_names(server, full, monkeypatch):
    "oxford-iiit-pet.tgz: images/<Breed>_<n>.jpg (cats capitalised), a few .mat files among them, and annotations/."
    breeds = ['Abyssinian', 'Bengal', 'american_bulldog', 'yorkshire_terrier']
    files = {f'oxford-iiit-pet/images/{b}_{i}.jpg': image_bytes((120, 90), 'RGB', 'JPEG', seed=i) for b in breeds for i in (1, 2)}
    files['oxford-iiit-pet/images/Abyssinian_100.mat'] = b'MATLAB 5.0 MAT-file'
    files['oxford-iiit-pet/annotations/list.txt'] = b'#Image CLASS-ID SPECIES BREED ID\nAbyssinian_1 1 1 1\n'
    files['oxford-iiit-pet/annotations/trimaps/Abyssinian_1.png'] = image_bytes((120, 90))
    publish(server, monkeypatch, 'pets', tgz(files))
    path = get_dataset('pets')
    ims = get_image_files(path/'images')
    assert len(ims) == 8 and all(f.suffix == '.jpg' for f in ims)           # the .mat file is not an image
    import re
    labels = sorted({re.match(r'^(.+)_\d+\.jpg$', f.name).group(1) for f in ims})
    assert labels == sorted(breeds) and (path/'annotations'/'list.txt').exists()

# ---------------------------------------------------------------- text and tables: the offline sample's layout, for real
def _offline_layout(name):
    "The folder of the offline sample (tiny) that the full data stands in for."
    return build_offline(name, 'tiny')

def test_human_numbers_full(server, full, monkeypatch):
    from course_lib.offline_text import number_words
    files = {'human_numbers/train.txt': ''.join(f'{number_words(i)} \n' for i in range(1, 8001)).encode(),
             'human_numbers/valid.txt': ''.join(f'{number_words(i)} \n' for i in range(8001, 10000)).encode()}
    publish(server, monkeypatch, 'human_numbers', tgz(files))
    path = get_dataset('human_numbers')
    assert tree(path) == tree(_offline_layout('human_numbers')) == ['train.txt', 'valid.txt']
    def read_numbers(path):   # lesson 07's reader
        return ' . '.join(l.strip() for l in Path(path).read_text(encoding='utf-8').splitlines() if l.strip()).split(' ')
    assert read_numbers(path/'train.txt')[:5] == ['one', '.', 'two', '.', 'three']
    assert read_numbers(path/'valid.txt')[-3:] == ['hundred', 'ninety', 'nine']              # ... nine thousand nine hundred ninety nine

def test_wikitext_full_becomes_the_corpus_layout(server, full, monkeypatch):
    "wikitext-103-raw-v1.zip: wikitext-103-raw/wiki.{train,valid,test}.raw, renamed to train.txt and valid.txt."
    para = ' = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 is a tactical role @-@ playing video game . \n'
    files = {f'wikitext-103-raw/wiki.{s}.raw': (para * n).encode() for s, n in (('train', 50), ('valid', 5), ('test', 5))}
    publish(server, monkeypatch, 'stdlib_corpus', zipped(files))
    path = get_dataset('stdlib_corpus')
    assert set(tree(_offline_layout('stdlib_corpus'))) <= set(tree(path)) == {'train.txt', 'valid.txt', 'wiki.test.raw'}
    from itertools import islice
    def read_lines(path, n=None):   # lesson 07's reader
        with open(path, encoding='utf-8') as f: return [l.strip() for l in islice((l for l in f if l.strip()), n)]
    texts = read_lines(path/'train.txt', 10)
    assert len(texts) == 10 and texts[1].startswith('Senjō no Valkyria 3')

def test_imdb_full_has_the_review_layout(server, full, monkeypatch):
    "imdb.tgz: imdb/{train,test}/{pos,neg}/<id>_<stars>.txt, imdb/unsup/<id>_0.txt, README, imdb.vocab."
    files = {f'imdb/{s}/{lab}/{i}_{9 if lab == "pos" else 2}.txt': f'A {lab} review number {i}.'.encode()
             for s in ('train', 'test') for lab in ('pos', 'neg') for i in range(3)}
    files.update({f'imdb/unsup/{i}_0.txt': b'An unlabelled review.' for i in range(3)})
    files.update({'imdb/README': b'Large Movie Review Dataset v1.0', 'imdb/imdb.vocab': b'the\nand\n',
                  'imdb/train/labeledBow.feat': b'0:9 1:1\n', 'imdb/train/urls_pos.txt': b'http://www.imdb.com/title/tt0453418/\n'})
    publish(server, monkeypatch, 'reviews', tgz(files))
    path = get_dataset('reviews')
    folders = lambda p: {q.relative_to(p).as_posix() for q in p.rglob('*') if q.is_dir()}
    assert folders(_offline_layout('reviews')) == folders(path) == {'train', 'test', 'unsup', 'train/pos', 'train/neg',
                                                                    'test/pos', 'test/neg'}
    reviews = [p.read_text(encoding='utf-8').strip() for p in sorted((path/'train').glob('*/*.txt'))]   # lesson 07's reader
    assert len(reviews) == 6 and reviews[0] == 'A neg review number 0.'                       # not the urls_*.txt files

def test_movielens_full_reads_like_the_offline_table(server, full, monkeypatch):
    "ml-100k.zip: ml-100k/u.data (tab separated), u.item (pipe separated, latin-1), u.user, u.genre ..."
    genres = '|'.join(['0'] * 18 + ['1'])
    files = {'ml-100k/u.data': b'196\t242\t3\t881250949\n186\t302\t3\t891717742\n',
             'ml-100k/u.item': f'242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|{genres}\n'
                               f'302|Café au lait (1994)|01-Jan-1994|||{genres}\n'.encode('latin-1'),
             'ml-100k/u.user': b'196|49|M|writer|55105\n', 'ml-100k/u.genre': b'unknown|0\n', 'ml-100k/README': b'MovieLens'}
    publish(server, monkeypatch, 'ratings', zipped(files))
    path = get_dataset('ratings')
    offline = _offline_layout('ratings')
    assert set(tree(offline)) - {'truth.npz'} <= set(tree(path))             # the files the lessons read are there
    for p in (offline, path):   # the same reading code for both: latin-1 reads the (ASCII) offline file too
        r = pd.read_csv(p/'u.data', sep='\t', names=['user', 'item', 'rating', 'timestamp'])
        items = pd.read_csv(p/'u.item', sep='|', header=None, encoding='latin-1')
        assert r.rating.between(1, 5).all() and items.shape[1] == 24
    assert 'Café au lait (1994)' in items[1].tolist()

ADULT = ['age', 'workclass', 'fnlwgt', 'education', 'education-num', 'marital-status', 'occupation', 'relationship',
         'race', 'sex', 'capital-gain', 'capital-loss', 'hours-per-week', 'native-country', 'salary']

def test_adult_full(server, full, monkeypatch):
    rows = '49, Private,101320, Assoc-acdm,12.0, Married-civ-spouse,, Wife, White, Female,0,1902,40, United-States,>=50k\n'
    publish(server, monkeypatch, 'adult', tgz({'adult_sample/adult.csv': (','.join(ADULT) + '\n' + rows * 3).encode()}))
    df = pd.read_csv(get_dataset('adult')/'adult.csv')
    assert list(df.columns) == ADULT and len(df) == 3

BULLDOZERS = ['SalesID', 'SalePrice', 'MachineID', 'ModelID', 'datasource', 'auctioneerID', 'YearMade',
              'MachineHoursCurrentMeter', 'UsageBand', 'saledate', 'fiModelDesc', 'fiBaseModel', 'fiSecondaryDesc',
              'fiModelSeries', 'fiModelDescriptor', 'ProductSize', 'fiProductClassDesc', 'state', 'ProductGroup',
              'ProductGroupDesc', 'Drive_System', 'Enclosure', 'Forks', 'Pad_Type', 'Ride_Control', 'Stick', 'Transmission',
              'Turbocharged', 'Blade_Extension', 'Blade_Width', 'Enclosure_Type', 'Engine_Horsepower', 'Hydraulics',
              'Pushblock', 'Ripper', 'Scarifier', 'Tip_Control', 'Tire_Size', 'Coupler', 'Coupler_System',
              'Grouser_Tracks', 'Hydraulics_Flow', 'Track_Type', 'Undercarriage_Pad_Width', 'Stick_Length', 'Thumb',
              'Pattern_Changer', 'Grouser_Type', 'Backhoe_Mounting', 'Blade_Type', 'Travel_Controls', 'Differential_Type',
              'Steering_Controls']

def test_bulldozers_manual_download_is_picked_up_and_has_every_offline_column(full):
    "The Kaggle zip (no automatic download): TrainAndValid.csv, Valid.csv, Test.csv ... at the top, dropped by hand."
    row = ['1139246', '66000', '999089', '3157', '121', '3', '2004', '68', 'Low', '11/16/2006 0:00'] + [''] * 43
    body = zipped({'TrainAndValid.csv': (','.join(BULLDOZERS) + '\n' + ','.join(row) + '\n').encode(),
                   'Valid.csv': (','.join(c for c in BULLDOZERS if c != 'SalePrice') + '\n').encode(),
                   'Test.csv': b'SalesID\n', 'Machine_Appendix.csv': b'MachineID\n'})
    src = dl.DATASETS['auction']
    assert src.url is None and src.manual
    with pytest.raises(DataError, match='kaggle competitions download'): get_dataset('auction')
    (full/'downloads').mkdir(parents=True); (full/'downloads'/src.archive_name).write_bytes(body)
    path = get_dataset('auction')
    df = pd.read_csv(path/'Train.csv', low_memory=False)
    offline = pd.read_csv(_offline_layout('auction')/'Train.csv', nrows=2)
    assert set(offline.columns) <= set(df.columns) and list(df.columns) == BULLDOZERS
    assert pd.to_datetime(df.saledate, format='%m/%d/%Y %H:%M').dt.year.tolist() == [2006]   # the offline format too
    assert pd.to_datetime(pd.read_csv(_offline_layout('auction')/'Train.csv', nrows=5).saledate, format='%m/%d/%Y %H:%M').notna().all()

def test_every_downloadable_dataset_is_covered_here():
    "A new registry entry with a full version needs its own test above (the real layout, served locally)."
    covered = {'digits', 'imagenette', 'pets', 'human_numbers', 'stdlib_corpus', 'reviews', 'ratings', 'adult', 'auction'}
    assert {s.name for s in dl.DATASETS.values() if s.has_full} == covered
