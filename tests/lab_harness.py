"""A real JupyterLab in a real browser, for the widget tests (the cleaner and the LR widget share it).

    from lab_harness import JupyterLab, require_browser, write_notebook
    def test_something(tmp_path):
        require_browser()                          # skips with a reason on a laptop; FAILS in CI (CI=true)
        with JupyterLab(tmp_path) as lab, lab.browser() as page:   # `jupyter lab` on 127.0.0.1 with a token
            lab.open(page, 'demo.ipynb')          # opens the notebook and waits for its kernel to be idle
            lab.run_all(page)                     # starts Run All Cells (JupyterLab's own command)
            lab.wait_for_text(page, 'READY')      # waits until some output shows this text
            lab.wait_idle()                       # waits until every kernel is idle (asked over the REST API)

Every wait is bounded: a test that cannot finish fails with the server's log instead of hanging. Calls to the
server's REST API are retried while it answers 5xx (its kernel list can fail for a moment while a kernel starts).
JupyterLab's commands are started without waiting on their promise, which never settles if the kernel connection
drops. The server runs with `expose_app_in_browser`, so `lab.command(page, 'notebook:run-all-cells')` can run any
JupyterLab command without clicking through menus. Everything started is stopped on exit, also on failure.
"""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.error, urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

def in_ci() -> bool:
    "True on a CI runner (`CI=true`, as GitHub Actions, GitLab and most others set it)."
    return os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')

def browser_problem() -> str | None:
    "Why the browser tests cannot run here (None: they can): Debian's chromium and the playwright package are needed."
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return 'the playwright package is not installed (pip install -r requirements.txt)'
    if not Path(CHROMIUM).exists(): return f'{CHROMIUM} is missing (install it with: sudo apt-get install chromium)'
    return None

def chromium_available() -> bool: return browser_problem() is None

def require_browser():
    "Skip the calling test when there is no browser, with the reason; in CI fail instead: CI must run what it claims."
    import pytest
    why = browser_problem()
    if why is None: return
    if in_ci(): pytest.fail(f'CI=true but the browser tests cannot run: {why}. Run .ci/install_browser.sh.', pytrace=False)
    pytest.skip(f'browser test skipped (not in CI): {why}')

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

class JupyterLab:
    def __init__(self, root_dir, start_timeout=90, api_timeout=30):
        self.root = Path(root_dir).resolve()
        self.start_timeout, self.api_timeout = start_timeout, api_timeout
        self.port, self.token = _free_port(), os.urandom(16).hex()
        self.url = f'http://127.0.0.1:{self.port}'
        self.proc = None

    def __enter__(self):
        self._home = Path(tempfile.mkdtemp(prefix='lab-home-'))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self._home/'config'), JUPYTER_RUNTIME_DIR=str(self._home/'runtime'),
                   JUPYTERLAB_WORKSPACES_DIR=str(self._home/'workspaces'), JUPYTERLAB_SETTINGS_DIR=str(self._home/'settings'))
        env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env.get('PATH', '')
        cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', '--ip', '127.0.0.1',
               f'--port={self.port}', f'--ServerApp.token={self.token}', f'--ServerApp.root_dir={self.root}',
               '--LabApp.expose_app_in_browser=True', '--LabApp.news_url=None', '--ServerApp.disable_check_xsrf=False']
        self._log = open(self._home/'lab.log', 'wb')
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                log = self.log(); self.__exit__(None, None, None)
                raise RuntimeError(f'jupyter lab exited early:\n{log}')
            try:
                self._request('/api/status'); return self
            except (OSError, urllib.error.HTTPError): time.sleep(0.5)
        log = self.log(); self.__exit__(None, None, None)
        raise TimeoutError(f'jupyter lab did not answer within {self.start_timeout}s:\n{log}')

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            try:
                for k in self.api('kernels', timeout=5): self._request(f'/api/kernels/{k["id"]}', method='DELETE')
            except Exception: pass
            os.killpg(self.proc.pid, signal.SIGTERM)
            try: self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(5)
        self._log.close()
        shutil.rmtree(self._home, ignore_errors=True)

    def log(self) -> str:
        if not self._log.closed: self._log.flush()
        p = self._home/'lab.log'
        return p.read_text(errors='replace')[-5000:] if p.exists() else ''

    def _request(self, path, method='GET'):
        req = urllib.request.Request(f'{self.url}{path}', method=method, headers={'Authorization': f'token {self.token}'})
        with urllib.request.urlopen(req, timeout=10) as r: return r.read()

    def api(self, path, timeout=None):
        "GET `/api/<path>` and decode the JSON; retried while the server answers 5xx or drops the connection (bounded)."
        deadline = time.time() + (self.api_timeout if timeout is None else timeout)
        while True:
            try: return json.loads(self._request(f'/api/{path}') or b'null')
            except urllib.error.HTTPError as e:
                if e.code < 500 or time.time() > deadline: raise
            except (ConnectionError, TimeoutError, urllib.error.URLError):
                if time.time() > deadline: raise
            time.sleep(0.5)

    @contextmanager
    def browser(self, width=1400, height=1000, timeout=60):
        "A Playwright page in headless Debian Chromium (every page wait bounded by `timeout` seconds); closed on exit."
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=timeout*1000)
            try:
                page = b.new_page(viewport={'width': width, 'height': height})
                page.set_default_timeout(timeout*1000); page.set_default_navigation_timeout(timeout*1000)
                yield page
            finally: b.close()

    def _wait_kernels_idle(self, timeout, settle, what):
        deadline, since = time.time() + timeout, None
        while time.time() < deadline:
            ks = self.api('kernels', timeout=max(1, deadline - time.time()))
            if ks and all(k['execution_state'] == 'idle' for k in ks):
                since = since or time.time()
                if time.time() - since >= settle: return
            else: since = None
            time.sleep(0.25)
        raise TimeoutError(f'{what} within {timeout}s:\n{self.log()}')

    def open(self, page, nb_relpath, timeout=90):
        "Open a notebook (path relative to the root) and wait until its kernel is idle."
        page.goto(f'{self.url}/lab/tree/{nb_relpath}?token={self.token}')
        page.wait_for_function('() => window.jupyterapp !== undefined && window.jupyterapp.shell !== undefined', timeout=timeout*1000)
        page.wait_for_selector('.jp-Notebook', timeout=timeout*1000)
        self._wait_kernels_idle(timeout, 0, 'the kernel did not become idle')

    def command(self, page, name, args=None, timeout=30):
        "Run a JupyterLab command by its id (e.g. 'notebook:run-all-cells'); returns its result, or 'timeout'."
        return page.evaluate('([n, a, ms]) => Promise.race([window.jupyterapp.commands.execute(n, a), '
                             'new Promise(r => setTimeout(() => r("timeout"), ms))])', [name, args or {}, timeout*1000])

    def start_command(self, page, name, args=None):
        "Start a JupyterLab command without waiting for it (its promise may never settle)."
        page.evaluate('([n, a]) => { window.jupyterapp.commands.execute(n, a); }', [name, args or {}])

    def run_all(self, page):
        "Start running every cell of the open notebook (wait for the result with `wait_for_text` / `wait_idle`)."
        self.start_command(page, 'notebook:run-all-cells')

    def wait_for_text(self, page, text, timeout=120):
        "Wait until `text` appears in some cell output."
        page.locator('.jp-OutputArea-output', has_text=text).first.wait_for(timeout=timeout*1000)

    def wait_idle(self, timeout=120, settle=1.0):
        "Wait until every kernel reports idle for `settle` seconds in a row."
        self._wait_kernels_idle(timeout, settle, 'kernels still busy')

def write_notebook(path, cells):
    "Write a notebook whose code cells are the strings in `cells` (no outputs)."
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': [], 'id': f'c{i}',
                     'source': src} for i, src in enumerate(cells)],
          'metadata': {'kernelspec': {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    Path(path).write_text(json.dumps(nb, indent=1))
    return Path(path)
