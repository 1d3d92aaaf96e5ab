"""The data cleaner in a real JupyterLab and a real browser: relabel one image through the rendered widget, click
Apply, and the file is in the new class folder on disk."""
import sys, time, urllib.error
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lab_harness import JupyterLab, chromium_available, write_notebook

pytestmark = pytest.mark.skipif(not chromium_available(),
                                reason='needs Debian chromium (/usr/bin/chromium) and the playwright package')

CELLS = ['''
from pathlib import Path
from PIL import Image
root = Path('pets')
for i, (cls, colour) in enumerate([('cat', 'red'), ('cat', 'orange'), ('dog', 'blue'), ('dog', 'navy')]):
    p = root/'train'/cls/f'img{i}.png'; p.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (16, 16), colour).save(p)
''', '''
from course_lib.cleaning import CleaningSession, DataCleaner
rebuilt = []
session = CleaningSession(root, on_apply=lambda: rebuilt.append(1))
items = [(p, 1.0 + i, 'dog') for i, p in enumerate(sorted(root.glob('train/cat/*.png')))]
cleaner = DataCleaner(session, items)
cleaner
''', '''print('READY')''']

def retry_5xx(fn, *args, tries=4):
    "Call `fn`, again when the server answers 5xx (its kernel list can fail for a moment while a kernel starts)."
    for i in range(tries):
        try: return fn(*args)
        except urllib.error.HTTPError as e:
            if e.code < 500 or i == tries - 1: raise
            time.sleep(1)

def open_notebook(lab, page, name):
    "`lab.open`; when only its polling of the kernel list fails (5xx), the page is open: poll again."
    try: lab.open(page, name)
    except urllib.error.HTTPError as e:
        if e.code < 500: raise
        retry_5xx(lab.wait_idle)

def start_run_all(page):
    "Start Run All without waiting on JupyterLab's promise (it never settles if the kernel connection drops)."
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

def test_relabel_through_the_rendered_widget(tmp_path):
    write_notebook(tmp_path/'clean.ipynb', CELLS)
    src, dst = tmp_path/'pets/train/cat/img1.png', tmp_path/'pets/train/dog/img1.png'   # img1: the highest loss
    with JupyterLab(tmp_path) as lab, lab.browser() as page:
        from playwright.sync_api import expect
        open_notebook(lab, page, 'clean.ipynb')
        start_run_all(page)
        lab.wait_for_text(page, 'READY')            # times out (fails) rather than hangs
        retry_5xx(lab.wait_idle)
        cards = page.locator('.cleaner-card')
        expect(cards).to_have_count(2)
        assert 'img1.png' in cards.first.inner_text()
        cards.first.locator('.cleaner-decision select').select_option('dog')
        page.locator('.cleaner-pending', has_text='1 pending change').wait_for()
        assert src.exists() and not dst.exists()       # deciding moves nothing
        page.locator('button.cleaner-apply').click()
        page.locator('.widget-html', has_text='Applied: moved 1 file').wait_for()
        deadline = time.time() + 30
        while not dst.exists() and time.time() < deadline: time.sleep(0.2)
        assert dst.exists() and not src.exists()
        expect(page.locator('.cleaner-card')).to_have_count(1)   # the relabelled image left the cat view
        assert '.cleaning' in {p.name for p in (tmp_path/'pets').iterdir()}
