"""The data module in plain Python: offline cache (and racing builders), verify_images, splitters, loaders."""
import json, os, time
from pathlib import Path
import numpy as np
import pytest
import torch
import course_lib.core as core
import course_lib.download as download
import course_lib.data as data
from course_lib.download import get_dataset, build_offline, DataSource, DataError, is_complete
from course_lib.data import (load_image_tensors, DataLoaders, verify_images, RandomSplitter, FolderSplitter, TimeSplitter, ImageFileDataset,
                             get_image_files)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv('COURSE_DATA', str(tmp_path/'data'))
    monkeypatch.setenv('COURSE_SIZE', 'tiny')
    core.get_settings(reload=True)
    yield tmp_path/'data'
    monkeypatch.undo(); core.get_settings(reload=True)

def png_folder(root, counts=None, size=8, mode='L', seed=0):
    "A small image-folder dataset: `counts` = {split: {class: n}}; pixel values are seeded random."
    from PIL import Image
    rng = np.random.default_rng(seed)
    counts = counts or {'train': {'a': 6, 'b': 6}, 'valid': {'a': 2, 'b': 2}}
    for split, per in counts.items():
        for c, n in per.items():
            (root/split/c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (size, size) if mode == 'L' else (size, size, 3)
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root/split/c/f'{i}.png')
    return root

@pytest.fixture
def toy_builder(monkeypatch):
    "Registers a fake offline dataset `toy` whose builder counts its calls."
    calls = []
    def build(dest, size, seed=42):
        calls.append(size); png_folder(Path(dest), seed=seed); return dest
    monkeypatch.setattr(download, 'OFFLINE_BUILDERS', {**getattr(download, 'OFFLINE_BUILDERS', {}), 'toy': build}, raising=False)
    monkeypatch.setitem(download.DATASETS, 'toy', DataSource('toy', 'toy'))
    return calls

# ---------------------------------------------------------------- get_dataset and the cache
def test_get_dataset_builds_once_and_caches(data_dir, toy_builder):
    p = get_dataset('toy')
    assert p == data_dir/'offline'/'tiny'/'toy' and is_complete(p)
    assert get_dataset('toy') == p and toy_builder == ['tiny']    # second call: from the cache
    marker = json.loads((p/download.MARKER).read_text())
    assert marker['files'] == 16 and marker['size'] == 'tiny'
    assert get_dataset('toy', size='small') == data_dir/'offline'/'small'/'toy' and toy_builder == ['tiny', 'small']
    assert sorted(q.name for q in p.parent.iterdir()) == ['toy']   # no temporary folder left

def test_get_dataset_errors_are_clear(data_dir, toy_builder):
    with pytest.raises(DataError, match='Known datasets: digits'): get_dataset('mnist')
    with pytest.raises(DataError, match='Use one of: tiny, small, full'): get_dataset('toy', size='huge')
    with pytest.raises(DataError, match=r'exists only as full data.*data_scripts/fetch.py imagenette'): get_dataset('imagenette')

def test_full_preset_without_a_full_source_builds_the_full_sample(data_dir, toy_builder):
    assert get_dataset('toy', size='full') == data_dir/'offline'/'full'/'toy' and toy_builder == ['full']

def test_full_preset_prefers_fetched_data(data_dir, toy_builder, monkeypatch):
    monkeypatch.setitem(download.DATASETS, 'toy', DataSource('toy', 'toy', filename='toy.tgz', manual='by hand'))
    with pytest.raises(DataError, match=r'downloads/toy.tgz'): get_dataset('toy', size='full')
    full = data_dir/'full'/'toy'; png_folder(full); download._write_marker(full, name='toy')
    assert get_dataset('toy', size='full') == full
    assert get_dataset('toy', size='tiny') == data_dir/'offline'/'tiny'/'toy'   # tiny stays tiny
    assert toy_builder == ['tiny']

def test_an_incomplete_cache_folder_is_moved_aside_not_deleted(data_dir, toy_builder):
    half = data_dir/'offline'/'tiny'/'toy'; half.mkdir(parents=True); (half/'mine.txt').write_text('keep')
    with pytest.warns(UserWarning, match='was not complete'): p = get_dataset('toy')
    assert is_complete(p)
    aside = [q for q in p.parent.iterdir() if q.name.startswith('toy.incomplete-')]
    assert len(aside) == 1 and (aside[0]/'mine.txt').read_text() == 'keep'

def test_a_failing_builder_leaves_nothing(data_dir, monkeypatch):
    def broken(dest, size, seed=42):
        (Path(dest)/'half.txt').write_text('x'); raise RuntimeError('builder crashed')
    monkeypatch.setattr(download, 'OFFLINE_BUILDERS', {'toy': broken}, raising=False)
    monkeypatch.setitem(download.DATASETS, 'toy', DataSource('toy', 'toy'))
    with pytest.raises(RuntimeError, match='builder crashed'): get_dataset('toy')
    assert list((data_dir/'offline'/'tiny').iterdir()) == []

def _race(barrier, log, out, nap, n):
    "A child process: wait until `n` children are ready, then build `toy` with a slow builder."
    def slow(dest, size, seed=42):
        with open(log, 'a') as f: f.write(f'{os.getpid()}\n')
        for i in range(10):
            (Path(dest)/'train'/'a').mkdir(parents=True, exist_ok=True)
            (Path(dest)/'train'/'a'/f'{i}.txt').write_text(str(i)); time.sleep(nap)
        return dest
    download.OFFLINE_BUILDERS = {'toy': slow}
    download.DATASETS['toy'] = DataSource('toy', 'toy')
    (barrier/str(os.getpid())).touch()
    t0 = time.time()
    while len(list(barrier.iterdir())) < n and time.time() - t0 < 60: time.sleep(0.005)
    (out/str(os.getpid())).write_text(str(build_offline('toy', 'tiny')))

def _racers(tmp_path, nap, n):
    "Start `n` processes (forked: the test's imports are reused, so they start in milliseconds)."
    import multiprocessing as mp
    for d in ('barrier', 'out'): (tmp_path/d).mkdir(exist_ok=True)
    ps = [mp.get_context('fork').Process(target=_race, args=(tmp_path/'barrier', tmp_path/'log', tmp_path/'out', nap, n))
          for _ in range(n)]
    for p in ps: p.start()
    return ps

def test_two_processes_building_at_once_give_one_complete_folder(tmp_path, data_dir):
    ps = _racers(tmp_path, 0.05, 2)
    for p in ps: p.join(60)
    assert [p.exitcode for p in ps] == [0, 0]
    dest = data_dir/'offline'/'tiny'/'toy'
    assert {f.read_text() for f in (tmp_path/'out').iterdir()} == {str(dest)}   # both got the same folder
    assert len((tmp_path/'log').read_text().split()) == 2                        # both really built ...
    assert sorted(q.name for q in dest.parent.iterdir()) == ['toy']              # ... one won, no leftovers
    assert is_complete(dest) and len(list((dest/'train'/'a').iterdir())) == 10

def test_a_killed_build_never_looks_complete(tmp_path, data_dir, toy_builder):
    [p] = _racers(tmp_path, 5.0, 1)   # slow: 50 s in all
    parent = data_dir/'offline'/'tiny'
    t0 = time.time()
    while not (parent.exists() and any(parent.glob('.toy.building-*/train/a/0.txt'))) and time.time() - t0 < 60: time.sleep(0.01)
    p.kill(); p.join()
    assert not (parent/'toy').exists() and len(list(parent.glob('.toy.building-*'))) == 1
    dest = build_offline('toy', 'tiny')                       # the next build clears the dead one's folder
    assert is_complete(dest) and sorted(q.name for q in parent.iterdir()) == ['toy']

def test_real_digits_sample_has_the_promised_layout(data_dir):
    p = get_dataset('digits')
    xt, yt, classes = load_image_tensors(p, 'train')
    xv, yv, _ = load_image_tensors(p, 'valid')
    assert classes == [str(i) for i in range(10)] and xt.shape[1:] == (1, 8, 8) and len(xt) > len(xv) > 0
    assert sorted(set(yt.tolist())) == list(range(10))

# ---------------------------------------------------------------- images to tensors
def test_load_image_tensors(tmp_path):
    root = png_folder(tmp_path/'ds', mode='RGB', size=6)
    x, y, classes = load_image_tensors(root, 'train')
    assert x.shape == (12, 3, 6, 6) and x.dtype == torch.float32 and y.tolist() == [0] * 6 + [1] * 6 and classes == ['a', 'b']
    x[:] = 0                                           # changing the result does not spoil the cache
    assert load_image_tensors(root, 'train')[0].max() > 0
    xb, yb, cb = load_image_tensors(root, 'train', classes=['b'], size=4)
    assert xb.shape == (6, 3, 4, 4) and yb.tolist() == [0] * 6 and cb == ['b']
    with pytest.raises(DataError, match=r"No class folder \['c'\].*Classes there: a, b"): load_image_tensors(root, 'train', classes=['c'])
    with pytest.raises(DataError, match='is not a folder'): load_image_tensors(root, 'test')

def test_unreadable_images_are_skipped_with_a_warning(tmp_path):
    root = png_folder(tmp_path/'ds')
    (root/'train'/'a'/'broken.png').write_bytes(b'not a png')
    with pytest.warns(UserWarning, match='1 unreadable image.*verify_images'):
        x, y, _ = load_image_tensors(root, 'train')
    assert len(x) == 12

# ---------------------------------------------------------------- verify_images
def _corrupt(root):
    good = root/'train'/'a'/'0.png'
    (root/'train'/'a'/'trunc.png').write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])   # opens, fails to decode
    (root/'valid'/'b'/'html.png').write_text('<html>404</html>')
    return {root/'train'/'a'/'trunc.png', root/'valid'/'b'/'html.png'}

def test_verify_images_quarantines_and_journals(tmp_path):
    root = png_folder(tmp_path/'ds')            # 16 good images
    bad = _corrupt(root)                        # + 2 bad = 11%
    q = tmp_path/'quarantine'
    (q/'train'/'a').mkdir(parents=True); (q/'train'/'a'/'trunc.png').write_text('an earlier one')   # a name clash
    rep = verify_images(root, quarantine=q)
    assert set(rep.bad) == bad and set(rep.moved) == bad and rep.checked == 18
    assert rep.moved[root/'train'/'a'/'trunc.png'] == q/'train'/'a'/'trunc_1.png'    # collision-safe
    assert rep.moved[root/'valid'/'b'/'html.png'] == q/'valid'/'b'/'html.png'        # relative path kept
    assert (q/'train'/'a'/'trunc.png').read_text() == 'an earlier one'               # nothing overwritten
    assert (q/'valid'/'b'/'html.png').read_text() == '<html>404</html>'              # moved, not deleted
    journal = [json.loads(l) for l in (q/'journal.jsonl').read_text().splitlines()]
    assert {(j['src'], j['dst']) for j in journal} == {(str(s), str(d)) for s, d in rep.moved.items()}
    assert len(get_image_files(root)) == 16 and verify_images(root).bad == {}

def test_verify_images_default_quarantine_is_beside_the_dataset(tmp_path):
    root = png_folder(tmp_path/'ds'); _corrupt(root)
    rep = verify_images(root)
    assert rep.quarantine == tmp_path/'ds.quarantine' and len(rep.moved) == 2

def test_verify_images_refuses_above_20_percent(tmp_path):
    root = png_folder(tmp_path/'ds', {'train': {'a': 7}})
    for i in range(3): (root/'train'/'a'/f'bad{i}.png').write_bytes(b'x')   # 3 of 10 = 30%
    with pytest.raises(DataError, match=r'3 of 10 images \(30%\).*nothing was moved.*force=True'): verify_images(root)
    assert len(get_image_files(root)) == 10
    assert verify_images(root, move=False).moved == {}
    assert len(verify_images(root, force=True).moved) == 3 and len(get_image_files(root)) == 7

# ---------------------------------------------------------------- splitters
def test_random_splitter_is_seeded_and_a_partition():
    items = list(range(103))
    tr, va = RandomSplitter(0.2, seed=3)(items)
    assert len(va) == 21 and sorted(tr + va) == items
    assert RandomSplitter(0.2, seed=3)(items) == (tr, va) and RandomSplitter(0.2, seed=4)(items) != (tr, va)
    with pytest.raises(ValueError, match='between 0 and 1'): RandomSplitter(1.5)

def test_random_splitter_uses_the_course_seed(monkeypatch):
    monkeypatch.setenv('COURSE_SEED', '7'); core.get_settings(reload=True)
    try: assert RandomSplitter(0.3)(range(50)) == RandomSplitter(0.3, seed=7)(range(50))
    finally: monkeypatch.undo(); core.get_settings(reload=True)

def test_folder_splitter(tmp_path):
    files = get_image_files(png_folder(tmp_path/'ds', {'train': {'a': 3}, 'valid': {'a': 2}, 'test': {'a': 1}}))
    tr, va = FolderSplitter()(files)
    assert [files[i].parts[-3] for i in tr] == ['train'] * 3 and [files[i].parts[-3] for i in va] == ['valid'] * 2

def test_time_splitter():
    import pandas as pd
    df = pd.DataFrame({'t': pd.date_range('2010-01-01', periods=10, freq='YS'), 'v': range(10)}).sample(frac=1, random_state=0)
    tr, va = TimeSplitter('t', '2015-01-01')(df)
    assert sorted(df.v.iloc[va]) == [5, 6, 7, 8, 9] and sorted(df.v.iloc[tr]) == [0, 1, 2, 3, 4]
    with pytest.raises(DataError, match='no training rows'): TimeSplitter('t', '1990')(df)
    with pytest.raises(DataError, match="No column 'date'"): TimeSplitter('date', '2015')(df)
    df.loc[df.index[0], 't'] = pd.NaT
    with pytest.raises(DataError, match='1 missing values'): TimeSplitter('t', '2015')(df)

# ---------------------------------------------------------------- DataLoaders
def test_from_tensors_shapes_and_seeded_order():
    x, y = torch.randn(150, 1, 4, 4), torch.arange(150)
    dls = DataLoaders.from_tensors(x, y, x[:30], y[:30], bs=64)
    assert [len(b[1]) for b in dls.train] == [64, 64, 22] and len(dls.train) == 3
    xb, yb = next(iter(dls.train))
    assert xb.shape == (64, 1, 4, 4) and torch.equal(xb, x[yb])
    assert torch.equal(torch.cat([b[1] for b in dls.valid]), y[:30])
    order = lambda d: torch.cat([b[1] for b in d.train])
    a, b = DataLoaders.from_tensors(x, y, x, y), DataLoaders.from_tensors(x, y, x, y)
    assert torch.equal(order(a), order(b))                    # the same seed, the same batches
    e1, e2 = order(a), order(a)
    assert not torch.equal(e1, e2)                            # each epoch a new order ...
    assert sorted(e2.tolist()) == list(range(150))            # ... of every example once
    assert [len(b[1]) for b in DataLoaders.from_tensors(x, y, x, y, drop_last=True).train] == [64, 64]

def test_from_folder_and_show_batch(tmp_path):
    import matplotlib; matplotlib.use('Agg')
    root = png_folder(tmp_path/'ds', mode='RGB', size=8)
    dls = DataLoaders.from_folder(root, bs=4, size=5)
    assert dls.classes == ['a', 'b'] and len(dls.train.dataset) == 12 and len(dls.valid.dataset) == 4
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 3, 5, 5) and yb.dtype == torch.long
    fig = dls.show_batch(n=6, ncols=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 6 and set(titles) <= {'a', 'b'}
    # show_batch draws from its own generator: the training order is unchanged
    before = torch.cat([b[1] for b in DataLoaders.from_folder(root, bs=4).train])
    d2 = DataLoaders.from_folder(root, bs=4); d2.show_batch(n=4)
    assert torch.equal(torch.cat([b[1] for b in d2.train]), before)

def test_image_file_dataset_rejects_unknown_classes(tmp_path):
    files = get_image_files(png_folder(tmp_path/'ds'))
    ds = ImageFileDataset(files)
    x, y = ds[0]
    assert ds.classes == ['a', 'b'] and x.shape == (1, 8, 8) and y == 0
    with pytest.raises(DataError, match=r"folders \['b'\] that are not among the classes"): ImageFileDataset(files, classes=['a'])

def test_show_batch_reshapes_flat_vectors():
    import matplotlib; matplotlib.use('Agg')
    x = torch.rand(20, 64); y = torch.arange(20) % 2
    fig = DataLoaders.from_tensors(x, y, x, y, classes=['even', 'odd']).show_batch(n=4)
    assert fig.axes[0].images[0].get_array().shape == (8, 8)

# ---------------------------------------------------------------- the command-line scripts
def _script(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent.parent/'data_scripts'/f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_build_samples_and_fetch_list(data_dir, capsys):
    other = data_dir.parent/'other-data'
    assert _script('build_samples').main(['--size', 'tiny', '--only', 'human_numbers', 'ring', '--data', str(other)]) == 0
    out = capsys.readouterr().out
    assert 'human_numbers' in out and 'ring' in out and 'total' in out and ' s' in out
    assert is_complete(other/'offline'/'tiny'/'human_numbers')
    assert _script('fetch').main(['--list', '--data', str(other)]) == 0
    rows = {l.split()[0]: l for l in capsys.readouterr().out.splitlines() if l.strip()}
    assert 'offline-only' in rows['ring'] and 'built: tiny' in rows['human_numbers'] and 'not fetched' in rows['digits']
    assert 'manual download needed' in rows['auction'] and 'none (full data only)' in rows['pets']

def test_fetch_script_checks_a_dropped_archive(data_dir, capsys):
    (data_dir/'downloads').mkdir(parents=True)
    (data_dir/'downloads'/'human_numbers.tgz').write_bytes(b'a truncated download')
    assert _script('fetch').main(['human_numbers']) == 1
    err = capsys.readouterr().err
    assert 'has 20 bytes, but 30,252 were expected' in err and 'Move that file away' in err
    assert (data_dir/'downloads'/'human_numbers.tgz').read_bytes() == b'a truncated download'   # kept
    with pytest.raises(SystemExit): _script('fetch').main(['no_such_set'])
    assert 'unknown dataset(s) no_such_set' in capsys.readouterr().err

def test_fetch_script_max_gb_lets_a_trusted_archive_past_the_registry_size(data_dir, capsys, monkeypatch):
    import io, tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tf:
        ti = tarfile.TarInfo('toy/a.bin'); ti.size = 3000; tf.addfile(ti, io.BytesIO(os.urandom(3000)))
    (data_dir/'downloads').mkdir(parents=True); (data_dir/'downloads'/'toy.tgz').write_bytes(buf.getvalue())
    monkeypatch.setitem(download.DATASETS, 'toy', DataSource('toy', None, filename='toy.tgz', manual='by hand', root='toy', unpacked=1000))
    monkeypatch.setattr(download, 'unpacked_limit', lambda unpacked: 2 * unpacked)   # small, to test with small files
    assert _script('fetch').main(['toy']) == 1
    assert "fetch('toy', max_bytes=" in capsys.readouterr().err
    assert _script('fetch').main(['toy', '--max-gb', '0.00001']) == 0                # 10,000 bytes
    assert (data_dir/'full'/'toy'/'a.bin').stat().st_size == 3000

# ---------------------------------------------------------------- free_name: the one collision-safe renamer
from course_lib.data import free_name

def test_free_name_numbers_past_files_and_promised_names(tmp_path):
    assert free_name(tmp_path/'a.png') == tmp_path/'a.png'
    (tmp_path/'a.png').touch(); (tmp_path/'a_1.png').touch()
    assert free_name(tmp_path/'a.png') == tmp_path/'a_2.png'
    assert free_name(tmp_path/'a.png', taken=[tmp_path/'a_2.png', str(tmp_path/'a_3.png')]) == tmp_path/'a_4.png'
    (tmp_path/'link.png').symlink_to(tmp_path/'nowhere')                      # a dangling link is taken too
    assert free_name(tmp_path/'link.png') == tmp_path/'link_1.png'
    assert free_name(tmp_path/'README') == tmp_path/'README'                   # no extension
    (tmp_path/'README').touch(); assert free_name(tmp_path/'README') == tmp_path/'README_1'

@pytest.mark.parametrize('stem', ['x' * 300, 'é' * 200, '猫' * 100])
def test_free_name_fits_the_file_system_limit(tmp_path, stem):
    "A too-long name (in bytes, not characters) is shortened, keeps its extension, stays unique; the OS accepts it."
    import os
    limit = os.pathconf(tmp_path, 'PC_NAME_MAX')
    with pytest.raises(OSError): (tmp_path/f'{stem}.jpeg').touch()            # the oracle: the OS refuses the original
    names = []
    for _ in range(12):                                                       # past _9: the number grows a digit
        q = free_name(tmp_path/f'{stem}.jpeg')
        assert q.suffix == '.jpeg' and len(q.name.encode()) <= limit and q not in names
        q.touch(); names.append(q)                                            # the OS accepts every one
    assert names[-1].name.endswith('_11.jpeg')

def test_free_name_refuses_an_extension_longer_than_the_limit(tmp_path):
    with pytest.raises(DataError, match='longer than'): data._fit('a', '.' + 'x' * 300, 255)

def test_verify_images_never_overwrites_in_the_quarantine(tmp_path):
    root = png_folder(tmp_path/'ds', {'train': {'a': 5}})
    (root/'train'/'a'/'bad.png').write_bytes(b'no'); q = tmp_path/'q'
    (q/'train'/'a').mkdir(parents=True); (q/'train'/'a'/'bad.png').write_text('an earlier one, keep')
    rep = verify_images(root, quarantine=q)
    assert rep.moved[root/'train'/'a'/'bad.png'] == q/'train'/'a'/'bad_1.png'
    assert (q/'train'/'a'/'bad.png').read_text() == 'an earlier one, keep'

# ---------------------------------------------------------------- loaders leave the global generator alone
def test_loaders_from_datasets_do_not_move_the_global_generator(tmp_path):
    root = png_folder(tmp_path/'ds')
    dls = DataLoaders.from_folder(root, bs=4, num_workers=0)
    torch.manual_seed(0); a = torch.rand(1)
    torch.manual_seed(0); list(dls.train); list(dls.valid); b = torch.rand(1)
    assert torch.equal(a, b)
    assert dls.valid.generator is not None and dls.train.generator is not None
