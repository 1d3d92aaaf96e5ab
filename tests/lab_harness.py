"""A real JupyterLab in a real browser, for the widget tests.

    from lab_harness import JupyterLab, chromium_available
    with JupyterLab(root_dir) as lab:            # starts `jupyter lab` on 127.0.0.1 with a token, stops it after
        with lab.browser() as page:               # Debian Chromium driven by Playwright (never a downloaded browser)
            lab.open(page, 'demo.ipynb')          # opens the notebook and waits for its kernel to be idle
            lab.run_all(page)                     # Run All Cells through JupyterLab's own command
            lab.wait_for_text(page, 'READY')      # waits until some output shows this text
            lab.wait_idle()                       # waits until every kernel is idle (asked over the REST API)

The server runs with `expose_app_in_browser`, so `lab.command(page, 'notebook:run-all-cells')` can run any
JupyterLab command without clicking through menus. Everything started is stopped on exit, also on failure.
"""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

def chromium_available() -> bool:
    "True when Debian's chromium and the playwright package are both installed."
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return False
    return Path(CHROMIUM).exists()

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

class JupyterLab:
    def __init__(self, root_dir, start_timeout=90):
        self.root = Path(root_dir).resolve()
        self.start_timeout = start_timeout
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
            if self.proc.poll() is not None: raise RuntimeError(f'jupyter lab exited early:\n{self.log()}')
            try:
                self.api('status'); return self
            except OSError: time.sleep(0.5)
        self.__exit__(None, None, None)
        raise TimeoutError(f'jupyter lab did not answer within {self.start_timeout}s:\n{self.log()}')

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            try:
                for k in self.api('kernels'): self._request(f'/api/kernels/{k["id"]}', method='DELETE')
            except Exception: pass
            os.killpg(self.proc.pid, signal.SIGTERM)
            try: self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(5)
        self._log.close()
        shutil.rmtree(self._home, ignore_errors=True)

    def log(self) -> str:
        self._log.flush()
        return (self._home/'lab.log').read_text(errors='replace')[-5000:]

    def _request(self, path, method='GET'):
        req = urllib.request.Request(f'{self.url}{path}', method=method, headers={'Authorization': f'token {self.token}'})
        with urllib.request.urlopen(req, timeout=10) as r: return r.read()

    def api(self, path):
        "GET `/api/<path>` and decode the JSON."
        return json.loads(self._request(f'/api/{path}') or b'null')

    @contextmanager
    def browser(self, width=1400, height=1000):
        "A Playwright page in headless Debian Chromium; closed on exit."
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = b.new_page(viewport={'width': width, 'height': height})
                page.set_default_timeout(60_000)
                yield page
            finally: b.close()

    def open(self, page, nb_relpath, timeout=90):
        "Open a notebook (path relative to the root) and wait until its kernel is idle."
        page.goto(f'{self.url}/lab/tree/{nb_relpath}?token={self.token}')
        page.wait_for_function('() => window.jupyterapp !== undefined && window.jupyterapp.shell !== undefined', timeout=timeout*1000)
        page.wait_for_selector('.jp-Notebook', timeout=timeout*1000)
        deadline = time.time() + timeout
        while time.time() < deadline:
            ks = self.api('kernels')
            if ks and all(k['execution_state'] == 'idle' for k in ks): return
            time.sleep(0.5)
        raise TimeoutError(f'the kernel did not become idle within {timeout}s:\n{self.log()}')

    def command(self, page, name, args=None):
        "Run a JupyterLab command by its id (e.g. 'notebook:run-all-cells')."
        return page.evaluate('([n, a]) => window.jupyterapp.commands.execute(n, a)', [name, args or {}])

    def run_all(self, page):
        "Run every cell of the open notebook."
        self.command(page, 'notebook:run-all-cells')

    def wait_for_text(self, page, text, timeout=120):
        "Wait until `text` appears in some cell output."
        page.locator('.jp-OutputArea-output', has_text=text).first.wait_for(timeout=timeout*1000)

    def wait_idle(self, timeout=120, settle=1.0):
        "Wait until every kernel reports idle for `settle` seconds in a row."
        deadline, since = time.time() + timeout, None
        while time.time() < deadline:
            ks = self.api('kernels')
            if ks and all(k['execution_state'] == 'idle' for k in ks):
                since = since or time.time()
                if time.time() - since >= settle: return
            else: since = None
            time.sleep(0.25)
        raise TimeoutError(f'kernels still busy after {timeout}s')

def write_notebook(path, cells):
    "Write a notebook whose code cells are the strings in `cells` (no outputs)."
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': [], 'id': f'c{i}',
                     'source': src} for i, src in enumerate(cells)],
          'metadata': {'kernelspec': {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    Path(path).write_text(json.dumps(nb, indent=1))
    return Path(path)
