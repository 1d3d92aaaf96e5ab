"""Archives: bombs are refused early (while reading) and again while writing; members that are not a plain path
inside the target are refused by name; a damaged archive gives a clear error. Nothing is left behind in any case."""
import io, os, tarfile, zipfile
from pathlib import Path
import pytest
import course_lib.core as core
import course_lib.archive as ar
import course_lib.download as dl
from course_lib.archive import (extract, check_archive, unpacked_limit, DataError, UnsafeArchiveError,
                                MiB, DEFAULT_MAX_BYTES, MAX_RATIO)
from course_lib.download import fetch, DataSource

def make_tar(path, members, mode='w:gz'):
    "A tar at `path` from (name, bytes | None, linkname | None, type) tuples (type defaults to a regular file)."
    with tarfile.open(path, mode) as tf:
        for name, body, link, kind in members:
            ti = tarfile.TarInfo(name); ti.type = kind
            if link: ti.linkname = link
            if body is not None: ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body) if body is not None else None)
    return path

def make_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, 'w', compression) as zf:
        for name, body in members: zf.writestr(zipfile.ZipInfo(name), body, compress_type=compression)
    return path

F, D, S, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE

def leftovers(folder): return sorted(p.name for p in Path(folder).iterdir())

# ---------------------------------------------------------------- bombs
def test_the_default_limit_is_a_sane_cap_and_registry_entries_get_a_margin():
    assert DEFAULT_MAX_BYTES == 4 * 2**30 and unpacked_limit(None) == DEFAULT_MAX_BYTES
    assert unpacked_limit(100 * MiB) == 150 * MiB + 64 * MiB
    for s in dl.DATASETS.values():   # every archive in the registry has a limit near its own size, not 64 GiB
        if s.has_full: assert s.unpacked and unpacked_limit(s.unpacked) < 2 * 2**30, s.name

def test_a_tar_bomb_is_refused_from_its_header_without_reading_its_data(tmp_path):
    "The archive is cut inside the big member's data: a check that decompressed it would hit the cut, not refuse."
    big = make_tar(tmp_path/'big.tgz', [('small.txt', b'ok', None, F), ('big.bin', os.urandom(3 * MiB), None, F)])
    cut = tmp_path/'cut.tgz'; cut.write_bytes(big.read_bytes()[:MiB])
    with pytest.raises(UnsafeArchiveError, match=r"more than 3,145,730 bytes \(member 'big.bin'\), more than the limit of 2,097,152"):
        extract(cut, tmp_path/'target', max_bytes=2 * MiB)
    with pytest.raises(DataError, match='is damaged'): check_archive(cut)   # the stream really is cut after that header
    assert leftovers(tmp_path) == ['big.tgz', 'cut.tgz']

@pytest.mark.parametrize('mode', ['w:gz', 'w:bz2', 'w:xz'])
def test_zeros_past_the_ratio_are_refused_even_under_the_default_limit(tmp_path, mode):
    arc = make_tar(tmp_path/'zeros.tar', [('zeros.bin', bytes(16 * MiB), None, F), ('next.txt', b'x', None, F)], mode)
    assert arc.stat().st_size * MAX_RATIO < 16 * MiB                  # it really expands more than 200:1
    with pytest.raises(UnsafeArchiveError, match=f'expands more than {MAX_RATIO}:1'): extract(arc, tmp_path/'target')
    assert leftovers(tmp_path) == ['zeros.tar']

def test_an_uncompressed_tar_of_zeros_is_not_a_bomb(tmp_path):
    "The ratio is about compression: a plain tar of zeros expands 1:1 and extracts (under the limit)."
    arc = make_tar(tmp_path/'plain.tar', [('zeros.bin', bytes(2 * MiB), None, F), ('next.txt', b'x', None, F)], 'w')
    out = extract(arc, tmp_path/'target')
    assert (out/'zeros.bin').stat().st_size == 2 * MiB

def test_a_zip_member_past_the_ratio_is_refused(tmp_path):
    arc = make_zip(tmp_path/'z.zip', [('fine.txt', b'hello'), ('zeros.bin', bytes(2 * MiB))])
    with pytest.raises(UnsafeArchiveError, match=r"member 'zeros.bin' expands [\d,]+:1 \(more than 200:1\)"):
        extract(arc, tmp_path/'target')
    assert leftovers(tmp_path) == ['z.zip']
    small = make_zip(tmp_path/'small.zip', [('zeros.bin', bytes(MiB // 2))])   # under 1 MiB: no ratio check
    assert (extract(small, tmp_path/'t2')/'zeros.bin').stat().st_size == MiB // 2

def test_a_zip_past_the_total_limit_is_refused_from_its_directory(tmp_path):
    arc = make_zip(tmp_path/'z.zip', [(f'{i}.bin', os.urandom(100_000)) for i in range(5)], zipfile.ZIP_STORED)
    with pytest.raises(UnsafeArchiveError, match=r"more than 300,000 bytes \(member '2.bin'\), more than the limit of 250,000"):
        extract(arc, tmp_path/'target', max_bytes=250_000)
    assert leftovers(tmp_path) == ['z.zip']

def test_a_flood_of_empty_members_is_refused(tmp_path):
    arc = make_tar(tmp_path/'flood.tgz', [(f'{i}.txt', b'', None, F) for i in range(200)])
    with pytest.raises(UnsafeArchiveError, match='bytes of headers and data'): check_archive(arc, max_bytes=20_000)

@pytest.mark.parametrize('kind', ['tar', 'zip'])
def test_the_limit_is_enforced_again_while_writing(tmp_path, monkeypatch, kind):
    "If the check is bypassed (or the file changes after it), the writer still stops at the limit and keeps nothing."
    members = [('a.bin', os.urandom(40_000)), ('b.bin', os.urandom(40_000))]
    arc = (make_tar(tmp_path/'a.tgz', [(n, b, None, F) for n, b in members]) if kind == 'tar'
           else make_zip(tmp_path/'a.zip', members))
    monkeypatch.setattr(ar, 'check_archive', lambda *a, **k: 0)
    # the tar's second pass reads headers again and stops at b.bin's; the zip writer stops after 50,000 bytes of it
    with pytest.raises(UnsafeArchiveError, match=r"(expands past the limit while writing member|would expand to more than 80,000 bytes \(member) 'b.bin'"):
        extract(arc, tmp_path/'target', max_bytes=50_000)
    assert leftovers(tmp_path) == [arc.name]

def test_fetch_passes_the_registry_limit(tmp_path, monkeypatch):
    monkeypatch.setenv('COURSE_DATA', str(tmp_path/'data')); core.get_settings(reload=True)
    try:
        arc = make_tar(tmp_path/'toy.tgz', [('toy/a.txt', b'a', None, F)])
        seen = []
        real = dl.extract
        monkeypatch.setattr(dl, 'extract', lambda a, d, max_bytes=None: seen.append(max_bytes) or real(a, d, max_bytes))
        for i, unpacked in enumerate((1000, None)):
            name = f'toy{i}'
            monkeypatch.setitem(dl.DATASETS, name, DataSource(name, None, filename=f'{name}.tgz', manual='by hand',
                                                               root='toy', unpacked=unpacked))
            (tmp_path/'data'/'downloads').mkdir(parents=True, exist_ok=True)
            (tmp_path/'data'/'downloads'/f'{name}.tgz').write_bytes(arc.read_bytes())
            assert (fetch(name)/'a.txt').read_text() == 'a'
        assert seen == [1500 + 64 * MiB, DEFAULT_MAX_BYTES]
    finally:
        monkeypatch.undo(); core.get_settings(reload=True)

# ---------------------------------------------------------------- members that are not a plain path inside the target
@pytest.mark.parametrize('name', ['.', '', './', 'a/..'])
def test_a_tar_file_member_naming_the_target_itself_is_refused_by_name(tmp_path, name):
    arc = make_tar(tmp_path/'a.tgz', [('ok.txt', b'ok', None, F), (name, b'x', None, F)])
    with pytest.raises(UnsafeArchiveError) as e: extract(arc, tmp_path/'target')
    assert repr(name.rstrip('/') if name == './' else name) in str(e.value) or repr(name) in str(e.value)
    assert 'extracting' not in str(e.value) and leftovers(tmp_path) == ['a.tgz']   # never a temporary folder's name

@pytest.mark.parametrize('name', ['.', './.'])
def test_a_zip_member_naming_the_target_itself_is_refused_by_name(tmp_path, name):
    arc = make_zip(tmp_path/'a.zip', [('ok.txt', b'ok'), (name, b'x')])
    with pytest.raises(UnsafeArchiveError, match=f"member {name!r} names the target folder itself"): extract(arc, tmp_path/'target')
    assert leftovers(tmp_path) == ['a.zip']

def test_the_root_folder_as_a_directory_member_is_fine(tmp_path):
    "`tar -C folder -czf x.tgz .` writes a member './' (the folder itself) and then './a.txt': a normal archive."
    arc = make_tar(tmp_path/'a.tgz', [('.', None, None, D), ('./sub', None, None, D), ('./sub/a.txt', b'a', None, F),
                                      ('sub/./b.txt', b'b', None, F)])
    out = extract(arc, tmp_path/'target')
    assert (out/'sub'/'a.txt').read_text() == 'a' and (out/'sub'/'b.txt').read_text() == 'b'
    zarc = make_zip(tmp_path/'a.zip', [('./', b''), ('sub/a.txt', b'a')])
    assert (extract(zarc, tmp_path/'zt')/'sub'/'a.txt').read_text() == 'a'

@pytest.mark.parametrize('members, message', [
    ([('a.txt', b'1', None, F), ('a.txt', b'2', None, F)], "'a.txt' cannot be written .*share a name"),
    ([('a', b'1', None, F), ('a', None, None, D)], "'a' cannot be written"),
    ([('a', b'1', None, F), ('a/b.txt', b'2', None, F)], "'a/b.txt' cannot be written"),
    ([('d', None, None, D), ('d', b'1', None, F)], "'d' cannot be written"),
])
def test_clashing_members_are_refused_by_name(tmp_path, members, message):
    arc = make_tar(tmp_path/'a.tar', members, 'w')
    with pytest.raises(UnsafeArchiveError, match=message): extract(arc, tmp_path/'target')
    assert leftovers(tmp_path) == ['a.tar']

def test_hard_links_inside_are_copied_and_others_refused(tmp_path):
    arc = make_tar(tmp_path/'a.tgz', [('a.txt', b'data', None, F), ('b.txt', None, 'a.txt', H)])
    out = extract(arc, tmp_path/'target')
    assert (out/'b.txt').read_text() == 'data' and (out/'b.txt').stat().st_nlink == 1   # a copy, not a link
    for i, target in enumerate(('missing.txt', '.', 'later.txt')):
        bad = make_tar(tmp_path/f'bad{i}.tgz', [('x', None, target, H), ('later.txt', b'late', None, F)])
        with pytest.raises(UnsafeArchiveError, match='is not a file earlier in the archive'): extract(bad, tmp_path/f't{i}')
    assert not any(p.name.startswith('t') and p.name != 'target' for p in tmp_path.iterdir())

def test_a_damaged_archive_says_so_and_leaves_nothing(tmp_path):
    good = make_tar(tmp_path/'good.tgz', [('a.bin', os.urandom(200_000), None, F), ('b.bin', os.urandom(200_000), None, F)])
    cut = tmp_path/'cut.tgz'; cut.write_bytes(good.read_bytes()[:300_000])
    with pytest.raises(DataError, match='is damaged.*Delete it and download it again'): extract(cut, tmp_path/'target')
    zcut = tmp_path/'cut.zip'; zcut.write_bytes(make_zip(tmp_path/'g.zip', [('a.txt', b'x' * 1000)]).read_bytes()[:-30])
    with pytest.raises(DataError, match='neither a tar nor a zip|is damaged'): extract(zcut, tmp_path/'target')
    assert 'target' not in leftovers(tmp_path) and not any('extracting' in n for n in leftovers(tmp_path))

def test_fetch_names_the_registry_size_when_an_archive_outgrows_it(tmp_path, monkeypatch):
    monkeypatch.setenv('COURSE_DATA', str(tmp_path/'data')); core.get_settings(reload=True)
    try:
        arc = make_tar(tmp_path/'toy.tgz', [('toy/a.bin', os.urandom(3000), None, F)])
        monkeypatch.setattr(dl, 'unpacked_limit', lambda unpacked: 2 * unpacked)   # a small limit, to test with small files
        monkeypatch.setitem(dl.DATASETS, 'toy', DataSource('toy', None, filename='toy.tgz', manual='by hand', root='toy', unpacked=1000))
        (tmp_path/'data'/'downloads').mkdir(parents=True); (tmp_path/'data'/'downloads'/'toy.tgz').write_bytes(arc.read_bytes())
        with pytest.raises(UnsafeArchiveError, match=r"expects toy to unpack to about 1,000 bytes.*fetch\('toy', max_bytes="):
            fetch('toy')
        assert not (tmp_path/'data'/'full'/'toy').exists()
        assert (fetch('toy', max_bytes=10_000)/'a.bin').stat().st_size == 3000            # the way out it names
    finally:
        monkeypatch.undo(); core.get_settings(reload=True)

def test_a_tar_member_of_zeros_after_real_data_is_refused_by_its_own_ratio(tmp_path):
    "8 MiB of random bytes keep the whole stream's ratio low (about 9:1); the zeros member alone is about 1000:1."
    arc = make_tar(tmp_path/'mixed.tgz', [('real.bin', os.urandom(8 * MiB), None, F), ('zeros.bin', bytes(64 * MiB), None, F),
                                          ('tail.txt', b'x', None, F)])
    assert (8 + 64) * MiB / arc.stat().st_size < MAX_RATIO                      # the stream as a whole looks harmless
    with pytest.raises(UnsafeArchiveError, match=f"member 'zeros.bin' expands more than {MAX_RATIO}:1"):
        extract(arc, tmp_path/'target')
    assert leftovers(tmp_path) == ['mixed.tgz']
    text = make_tar(tmp_path/'text.tgz', [(f'{i}.csv', ('id,value\n' + ''.join(f'{j},{j % 7}\n' for j in range(300_000))).encode(), None, F)
                                          for i in range(2)])
    assert (extract(text, tmp_path/'t2')/'1.csv').stat().st_size > 2 * MiB     # compressible but real: extracts
