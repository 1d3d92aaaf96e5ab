"""Downloads and extraction against a local HTTP server: each failure ends in a clear error, writes nothing outside
its target and leaves no half-written file."""
import hashlib, http.server, io, os, socketserver, tarfile, threading, time, zipfile
from pathlib import Path
import pytest
import course_lib.core as core
import course_lib.download as data
from course_lib.archive import extract, DataError, UnsafeArchiveError
from course_lib.download import download, fetch, DataSource, DownloadError, ChecksumError, pinned_sha256

# ---------------------------------------------------------------- a local server the tests start and stop
ROUTES, HITS = {}, {}   # path -> dict(body=..., status=200, length=None, delay=0)

class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        HITS[self.path] = HITS.get(self.path, 0) + 1
        r = ROUTES.get(self.path)
        if r is None: return self.send_error(404)
        if r.get('delay'): time.sleep(r['delay'])
        if r.get('action'): return _misbehave(self, r['action'])
        if r.get('location'):   # a redirect
            self.send_response(r.get('status', 302)); self.send_header('Location', r['location'])
            self.send_header('Content-Length', '0'); self.end_headers(); return
        body = r['body']
        try:
            self.send_response(r.get('status', 200))
            self.send_header('Content-Length', str(r.get('length') or len(body)))
            self.end_headers(); self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError): pass   # the client gave up (timeout test)

def _misbehave(h, action):
    "Transport failures a real network produces: a reset, a silent close, an answer that is not HTTP."
    import socket, struct
    if action == 'reset':     # RST instead of an answer (SO_LINGER 0 makes close() send a reset)
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    elif action == 'garbage':
        h.wfile.write(b'SSH-2.0-OpenSSH_9.6\r\n'); h.wfile.flush()
    elif action == 'reset_midway':   # headers and half the body, then a reset
        h.send_response(200); h.send_header('Content-Length', '100000'); h.end_headers()
        h.wfile.write(b'x' * 50_000); h.wfile.flush()
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    h.close_connection = True
    try: h.connection.shutdown(socket.SHUT_RDWR) if action != 'reset' and action != 'reset_midway' else None
    except OSError: pass
    h.connection.close()

@pytest.fixture(scope='module')
def server():
    srv = socketserver.ThreadingTCPServer(('127.0.0.1', 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    yield f'http://127.0.0.1:{srv.server_address[1]}'
    srv.shutdown(); srv.server_close(); t.join(5)

def serve(path, body, **kw):
    ROUTES[path] = dict(body=body, **kw); HITS.pop(path, None)
    return path

FAST = dict(timeout=0.5, retries=1, backoff=0.01, quiet=True)

def listing(folder): return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob('*'))

# ---------------------------------------------------------------- archives built by the tests
def make_tar(members, mode='w:gz'):
    "Bytes of a tar archive from (name, data | None, linkname | None, type) tuples."
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, body, link, kind in members:
            ti = tarfile.TarInfo(name); ti.type = kind
            if link: ti.linkname = link
            if body is not None: ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()

def make_zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        for name, body in members: zf.writestr(zipfile.ZipInfo(name), body)
    return buf.getvalue()

GOOD = make_tar([('pkg/train/a/1.txt', b'one', None, tarfile.REGTYPE), ('pkg/train/b/2.txt', b'two', None, tarfile.REGTYPE),
                 ('pkg/link.txt', None, 'train/a/1.txt', tarfile.SYMTYPE)])

# ---------------------------------------------------------------- downloads
def test_good_archive_downloads_and_extracts(server, tmp_path):
    serve('/good.tgz', GOOD)
    arc = download(server + '/good.tgz', tmp_path/'dl'/'good.tgz', sha256=hashlib.sha256(GOOD).hexdigest(), size=len(GOOD), **FAST)
    assert arc.read_bytes() == GOOD
    out = extract(arc, tmp_path/'work'/'target')
    assert (out/'pkg'/'train'/'b'/'2.txt').read_text() == 'two' and (out/'pkg'/'link.txt').read_text() == 'one'
    assert listing(tmp_path/'dl') == ['good.tgz']
    assert sorted(p.name for p in (tmp_path/'work').iterdir()) == ['target']   # no temporary folder left beside it

def test_md5_and_size_are_checked_too(server, tmp_path):
    serve('/good.tgz', GOOD)
    download(server + '/good.tgz', tmp_path/'ok.tgz', md5=hashlib.md5(GOOD).hexdigest(), size=len(GOOD), **FAST)
    with pytest.raises(ChecksumError, match='bytes, but 5 were expected'):
        download(server + '/good.tgz', tmp_path/'bad.tgz', size=5, **FAST)
    assert listing(tmp_path) == ['ok.tgz']

def test_wrong_checksum(server, tmp_path):
    serve('/good.tgz', GOOD)
    with pytest.raises(ChecksumError, match=r'has sha256 [0-9a-f]{64}, but 0{64} was expected'):
        download(server + '/good.tgz', tmp_path/'x.tgz', sha256='0' * 64, **FAST)
    assert listing(tmp_path) == []
    assert HITS['/good.tgz'] == 1   # a wrong checksum is not retried: the same bytes would come again

def test_truncated_body_is_retried_then_refused(server, tmp_path):
    serve('/short.tgz', GOOD, length=len(GOOD) + 5000)
    with pytest.raises(DownloadError, match=r'after 2 attempts: .*truncated'):
        download(server + '/short.tgz', tmp_path/'x.tgz', **FAST)
    assert HITS['/short.tgz'] == 2
    assert listing(tmp_path) == []

def test_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match=r'HTTP 404.*Retrying will not help'):
        download(server + '/nothing-here.tgz', tmp_path/'x.tgz', **FAST)
    assert HITS['/nothing-here.tgz'] == 1
    assert listing(tmp_path) == []

def test_server_slower_than_timeout(server, tmp_path):
    serve('/slow.tgz', GOOD, delay=3)
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match=r'after 2 attempts: no answer within 0.5 s \(timed out\)'):
        download(server + '/slow.tgz', tmp_path/'x.tgz', **FAST)
    assert time.perf_counter() - t0 < 2.5   # two short timeouts, not the server's 3 s
    assert HITS['/slow.tgz'] == 2 and listing(tmp_path) == []

def test_server_error_is_retried(server, tmp_path):
    serve('/busy.tgz', b'busy', status=503)
    with pytest.raises(DownloadError, match='HTTP 503'):
        download(server + '/busy.tgz', tmp_path/'x.tgz', **FAST)
    assert HITS['/busy.tgz'] == 2 and listing(tmp_path) == []

def test_unreachable_host(tmp_path):
    import socket
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()   # nobody listens there
    with pytest.raises(DownloadError, match='could not connect'):
        download(f'http://127.0.0.1:{port}/x.tgz', tmp_path/'x.tgz', **FAST)
    assert listing(tmp_path) == []

def test_interrupted_download_leaves_nothing(server, tmp_path, monkeypatch):
    "A KeyboardInterrupt halfway through removes the .part file and leaves no dest."
    serve('/good.tgz', GOOD)
    real_open = open
    class Boom:
        def __init__(self, f): self.f = f
        def __enter__(self): return self
        def __exit__(self, *a): self.f.close()
        def write(self, b): self.f.write(b); raise KeyboardInterrupt
        def __getattr__(self, k): return getattr(self.f, k)
    monkeypatch.setattr('builtins.open', lambda p, m='r', *a, **k: Boom(real_open(p, m, *a, **k)) if str(p).endswith('.part') else real_open(p, m, *a, **k))
    with pytest.raises(KeyboardInterrupt): download(server + '/good.tgz', tmp_path/'x.tgz', **FAST)
    monkeypatch.undo()
    assert listing(tmp_path) == []

# ---------------------------------------------------------------- malicious archives: refused, nothing written
ATTACKS = {
    'dotdot':          ([('ok.txt', b'ok', None, tarfile.REGTYPE), ('../../escaped.txt', b'x', None, tarfile.REGTYPE)], "climbs out"),
    'absolute':        ([('/tmp/escaped-abs.txt', b'x', None, tarfile.REGTYPE)], 'absolute path'),
    'symlink':         ([('link', None, '../../outside', tarfile.SYMTYPE)], 'symbolic link .* points outside'),
    'symlink_abs':     ([('link', None, '/etc', tarfile.SYMTYPE)], 'symbolic link .* points outside'),
    'hardlink':        ([('hard', None, '../escaped.txt', tarfile.LNKTYPE)], 'hard link .* points outside'),
    'through_link':    ([('sub', None, '.', tarfile.SYMTYPE), ('sub/up', None, '..', tarfile.SYMTYPE)], 'through a symbolic link'),
    'write_via_link':  ([('d', None, 'a', tarfile.SYMTYPE), ('d/f.txt', b'x', None, tarfile.REGTYPE)], 'through a symbolic link'),
    'device':          ([('dev', None, None, tarfile.CHRTYPE)], 'device file or pipe'),
    'fifo':            ([('fifo', None, None, tarfile.FIFOTYPE)], 'device file or pipe'),
}

@pytest.mark.parametrize('mode', ['w:gz', 'w:bz2', 'w:xz', 'w'])
@pytest.mark.parametrize('attack', list(ATTACKS))
def test_malicious_tar_is_refused(server, tmp_path, attack, mode):
    members, message = ATTACKS[attack]
    body = make_tar(members, mode)
    serve(f'/{attack}.tar', body)
    arc = download(server + f'/{attack}.tar', tmp_path/'dl'/'evil.tar', sha256=hashlib.sha256(body).hexdigest(), **FAST)
    (tmp_path/'work').mkdir()
    with pytest.raises(UnsafeArchiveError) as e:
        extract(arc, tmp_path/'work'/'target')
    import re
    assert re.search(message, str(e.value)) and 'refusing to extract' in str(e.value)
    assert listing(tmp_path) == ['dl', 'dl/evil.tar', 'work']   # nothing beside the archive, not even the target
    assert not Path('/tmp/escaped-abs.txt').exists()

def test_zip_with_dotdot_is_refused(server, tmp_path):
    body = make_zip([('fine.txt', b'ok'), ('../evil.txt', b'x')])
    serve('/evil.zip', body)
    arc = download(server + '/evil.zip', tmp_path/'dl'/'evil.zip', **FAST)
    (tmp_path/'work').mkdir()
    with pytest.raises(UnsafeArchiveError, match=r"climbs out of the target with '\.\.' \('\.\./evil\.txt'\)"):
        extract(arc, tmp_path/'work'/'target')
    assert listing(tmp_path) == ['dl', 'dl/evil.zip', 'work']

def test_zip_absolute_and_backslash_paths_are_refused(tmp_path):
    for name, msg in [('/abs.txt', 'absolute path'), ('C:/win.txt', 'absolute path'), ('..\\evil.txt', 'climbs out')]:
        arc = tmp_path/'a.zip'; arc.write_bytes(make_zip([(name, b'x')]))
        with pytest.raises(UnsafeArchiveError, match=msg): extract(arc, tmp_path/'target')
        assert listing(tmp_path) == ['a.zip']

def test_zip_symlink_is_refused(tmp_path):
    import stat
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zi = zipfile.ZipInfo('link'); zi.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(zi, '../../outside')
    arc = tmp_path/'l.zip'; arc.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match='link or special file'): extract(arc, tmp_path/'target')
    assert listing(tmp_path) == ['l.zip']

def test_archive_past_the_size_limit_is_refused(tmp_path):
    arc = tmp_path/'big.tgz'; arc.write_bytes(make_tar([('big.bin', b'\0' * 100_000, None, tarfile.REGTYPE)]))
    assert arc.stat().st_size < 1000   # it compresses to almost nothing ...
    with pytest.raises(UnsafeArchiveError, match=r"would expand to more than 100,000 bytes \(member 'big.bin'\), more than the limit of 10,000 bytes"):
        extract(arc, tmp_path/'target', max_bytes=10_000)   # ... but expands past the limit
    zarc = tmp_path/'big.zip'; zarc.write_bytes(make_zip([('big.bin', b'\0' * 100_000)]))
    with pytest.raises(UnsafeArchiveError, match='more than the limit'): extract(zarc, tmp_path/'target', max_bytes=10_000)
    assert listing(tmp_path) == ['big.tgz', 'big.zip']

def test_not_an_archive_and_existing_target(tmp_path):
    junk = tmp_path/'junk.tgz'; junk.write_bytes(b'<html>not found</html>')
    with pytest.raises(DataError, match='neither a tar nor a zip'): extract(junk, tmp_path/'t')
    arc = tmp_path/'good.tgz'; arc.write_bytes(GOOD)
    (tmp_path/'t').mkdir(); (tmp_path/'t'/'mine.txt').write_text('keep me')
    with pytest.raises(DataError, match='never overwrites'): extract(arc, tmp_path/'t')
    assert (tmp_path/'t'/'mine.txt').read_text() == 'keep me'

# ---------------------------------------------------------------- fetch: registry, manual pick-up, trust on first use
@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv('COURSE_DATA', str(tmp_path/'data'))
    core.get_settings(reload=True)
    yield tmp_path/'data'
    monkeypatch.undo(); core.get_settings(reload=True)

def _register(monkeypatch, **kw):
    src = DataSource(**{'name': 'toy', 'builder': None, **kw})
    monkeypatch.setitem(data.DATASETS, src.name, src)
    return src

def test_fetch_downloads_extracts_and_fixes_the_layout(server, data_dir, monkeypatch):
    serve('/toy.tgz', GOOD)
    _register(monkeypatch, url=server + '/toy.tgz', size=len(GOOD), root='pkg', rename=(('train', 'training_set'),))
    out = fetch('toy', quiet=True, timeout=1, retries=0)
    assert out == data_dir/'full'/'toy' and (out/'training_set'/'a'/'1.txt').read_text() == 'one'
    assert data.is_complete(out)
    # no published sha256: the first download's is pinned (trust on first use)
    assert pinned_sha256('toy.tgz') == hashlib.sha256(GOOD).hexdigest()
    assert (data_dir/'SHA256SUMS').read_text() == f'{hashlib.sha256(GOOD).hexdigest()}  toy.tgz\n'
    assert sorted(p.name for p in (data_dir/'full').iterdir()) == ['toy']   # no temporary folders left
    assert fetch('toy') == out and HITS['/toy.tgz'] == 1                      # cached: no second download

def test_fetch_refuses_a_changed_file_after_pinning(server, data_dir, monkeypatch):
    serve('/toy.tgz', GOOD)
    _register(monkeypatch, url=server + '/toy.tgz', root='pkg')
    fetch('toy', quiet=True, timeout=1, retries=0)
    # the archive changes at its source, and the local copy is gone: the new download no longer matches the pin
    os.rename(data_dir/'full'/'toy', data_dir/'old-toy'); os.remove(data_dir/'downloads'/'toy.tgz')
    serve('/toy.tgz', make_tar([('pkg/other.txt', b'changed', None, tarfile.REGTYPE)]))
    with pytest.raises(ChecksumError, match=r'was expected.*pinned by your first download.*SHA256SUMS'):
        fetch('toy', quiet=True, timeout=1, retries=0)
    assert not (data_dir/'full'/'toy').exists() and listing(data_dir/'downloads') == []

def test_manual_download_is_picked_up(data_dir, monkeypatch):
    _register(monkeypatch, filename='toy-manual.tgz', root='pkg', manual='Download it from the competition page.')
    with pytest.raises(DataError) as e: fetch('toy')
    msg = str(e.value)
    assert 'cannot be downloaded automatically' in msg and 'Download it from the competition page' in msg
    assert str(data_dir/'downloads'/'toy-manual.tgz') in msg and 'python data_scripts/fetch.py toy' in msg
    (data_dir/'downloads').mkdir(parents=True); (data_dir/'downloads'/'toy-manual.tgz').write_bytes(GOOD)
    out = fetch('toy')
    assert (out/'train'/'b'/'2.txt').read_text() == 'two'

def test_manual_file_with_wrong_checksum_is_kept_and_reported(data_dir, monkeypatch):
    _register(monkeypatch, filename='toy.tgz', root='pkg', manual='by hand', sha256='1' * 64)
    (data_dir/'downloads').mkdir(parents=True); (data_dir/'downloads'/'toy.tgz').write_bytes(GOOD)
    with pytest.raises(ChecksumError, match='Move that file away'): fetch('toy')
    assert (data_dir/'downloads'/'toy.tgz').read_bytes() == GOOD   # the learner's file is untouched
    assert not (data_dir/'full'/'toy').exists()

def test_no_network_message_names_the_drop_location(data_dir, monkeypatch):
    import socket
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    _register(monkeypatch, builder='digits', url=f'http://127.0.0.1:{port}/toy.tgz', root='pkg')
    with pytest.raises(DownloadError) as e: fetch('toy', quiet=True, timeout=0.5, retries=0)
    msg = str(e.value)
    assert str(data_dir/'downloads'/'toy.tgz') in msg and 'python data_scripts/fetch.py toy' in msg and 'COURSE_SIZE=small' in msg
    assert listing(data_dir/'downloads') == []

def test_fetch_refuses_a_malicious_archive_and_leaves_no_folder(server, data_dir, monkeypatch):
    body = make_tar([('pkg/a.txt', b'a', None, tarfile.REGTYPE), ('pkg/../../../escaped.txt', b'x', None, tarfile.REGTYPE)])
    serve('/evil.tgz', body)
    _register(monkeypatch, url=server + '/evil.tgz', root='pkg')
    with pytest.raises(UnsafeArchiveError): fetch('toy', quiet=True, timeout=1, retries=0)
    assert not (data_dir/'full').exists() or listing(data_dir/'full') == []
    assert not (data_dir.parent/'escaped.txt').exists()

def test_two_fetches_at_once_give_one_folder(server, data_dir, monkeypatch):
    "Two threads fetching the same dataset: each downloads to its own .part, one folder wins, nothing is left over."
    from concurrent.futures import ThreadPoolExecutor
    serve('/toy.tgz', GOOD, delay=0.3)
    _register(monkeypatch, url=server + '/toy.tgz', root='pkg')
    with ThreadPoolExecutor(2) as ex: outs = list(ex.map(lambda _: fetch('toy', quiet=True, timeout=2, retries=0), range(2)))
    assert outs == [data_dir/'full'/'toy'] * 2 and data.is_complete(outs[0])
    assert listing(data_dir/'downloads') == ['toy.tgz'] and sorted(p.name for p in (data_dir/'full').iterdir()) == ['toy']

def test_fetch_reports_a_changed_layout(server, data_dir, monkeypatch):
    serve('/toy.tgz', GOOD)
    _register(monkeypatch, url=server + '/toy.tgz', root='not-there')
    with pytest.raises(DataError, match="no folder 'not-there' \\(found: pkg\\)"): fetch('toy', quiet=True, timeout=1, retries=0)
    assert listing(data_dir/'full') == []

# ---------------------------------------------------------------- every transport failure: DownloadError, nothing on disk
def _redirect_chain(n):
    for i in range(n): serve(f'/hop/{i}', b'', location=f'/hop/{i + 1}')
    serve(f'/hop/{n}', GOOD)

@pytest.mark.parametrize('route, setup, message, attempts', [   # attempts: requests the route saw
    ('/loop', lambda base: serve('/loop', b'', location='/loop'), 'redirects in a loop', 31),       # 30 redirects, once
    ('/pingpong', lambda base: (serve('/pingpong', b'', location='/pong'), serve('/pong', b'', location='/pingpong')),
     'redirects in a loop', 16),
    ('/hop/0', lambda base: _redirect_chain(40), 'more than 30 times', 1),
    ('/to-file', lambda base: serve('/to-file', b'', location='file:///etc/passwd'), 'cannot be downloaded', 1),
    ('/to-bad', lambda base: serve('/to-bad', b'', location='http://[::1:80/x'), 'cannot be downloaded', 1),
    ('/reset', lambda base: serve('/reset', b'', action='reset'), 'could not connect|connection', 2),
    ('/garbage', lambda base: serve('/garbage', b'', action='garbage'), 'could not connect|connection', 2),
    ('/reset-midway', lambda base: serve('/reset-midway', b'', action='reset_midway'), 'truncated|connection', 2),
])
def test_transport_failures_end_in_download_error_and_leave_nothing(server, tmp_path, route, setup, message, attempts):
    setup(server)
    with pytest.raises(DownloadError, match=message):
        download(server + route, tmp_path/'x.tgz', **FAST)
    assert HITS[route] == attempts            # a redirect loop or a bad address is not retried (retries=1); a reset is
    assert listing(tmp_path) == []            # no .part, no dest

@pytest.mark.parametrize('url, message', [
    ('http://', 'cannot be downloaded'), ('htp://example.org/x.tgz', 'cannot be downloaded'),
    ('example.org/x.tgz', 'cannot be downloaded'), ('http://[::1/x.tgz', 'cannot be downloaded'), ('', 'cannot be downloaded'),
])
def test_bad_addresses_end_in_download_error(tmp_path, url, message):
    with pytest.raises(DownloadError, match=message): download(url, tmp_path/'x.tgz', **FAST)
    assert listing(tmp_path) == []

def test_tls_failure_ends_in_download_error(server, tmp_path):
    "https:// to a server that speaks plain HTTP: the TLS handshake fails, as it does behind a captive portal."
    serve('/good.tgz', GOOD)
    with pytest.raises(DownloadError, match=r'secure \(TLS\) connection .* failed.*Retrying will not help'):
        download(server.replace('http://', 'https://') + '/good.tgz', tmp_path/'x.tgz', **FAST)
    assert listing(tmp_path) == []

def test_fetch_adds_the_offline_help_to_every_transport_failure(server, data_dir, monkeypatch):
    serve('/loop', b'', location='/loop')
    for url in (server + '/loop', server.replace('http://', 'https://') + '/good.tgz', 'htp://nowhere/toy.tgz'):
        _register(monkeypatch, builder='digits', url=url, filename='toy.tgz', root='pkg')
        with pytest.raises(DownloadError) as e: fetch('toy', quiet=True, timeout=0.5, retries=0)
        msg = str(e.value)
        assert 'No internet here?' in msg and str(data_dir/'downloads'/'toy.tgz') in msg and 'COURSE_SIZE=small' in msg, msg
        assert not (data_dir/'downloads').exists() or listing(data_dir/'downloads') == []
