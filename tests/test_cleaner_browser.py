"""The data cleaner in a real JupyterLab and a real browser: relabel one image through the rendered widget, click
Apply, and the file is in the new class folder on disk; the grid then shows it under its new label, marked as just
moved. Undo brings it back."""
import sys, time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lab_harness
from lab_harness import JupyterLab, require_browser, write_notebook

@pytest.fixture
def browser():
    require_browser()            # skip with a reason on a laptop without a browser; fail in CI (CI=true)

@pytest.mark.parametrize('ci', ['true', ''])
def test_browser_tests_never_skip_in_ci(monkeypatch, ci):
    "Without a browser: skipped, with the reason, on a laptop; a failure in CI."
    monkeypatch.setattr(lab_harness, 'CHROMIUM', '/nonexistent/chromium')
    monkeypatch.setenv('CI', ci)
    with pytest.raises(BaseException) as e: require_browser()      # skip and fail are both BaseExceptions
    assert e.type is (pytest.fail.Exception if ci else pytest.skip.Exception), e.type
    assert '/nonexistent/chromium is missing' in str(e.value)

CELLS = ['''
from pathlib import Path
from PIL import Image
root = Path('pets')
for i, (cls, colour) in enumerate([('cat', 'red'), ('cat', 'orange'), ('dog', 'blue'), ('dog', 'navy')]):
    p = root/'train'/cls/f'img{i}.png'; p.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (16, 16), colour).save(p)
''', '''
from course_lib.cleaning import CleaningSession
from course_lib.cleaner_widget import DataCleaner
rebuilt = []
session = CleaningSession(root, on_apply=lambda: rebuilt.append(1))
files = sorted(root.glob('train/*/*.png'))
probs = [[0.3, 0.7] if f.name == 'img0.png' else [0.1, 0.9] if f.name == 'img1.png' else [0.2, 0.8] for f in files]
cleaner = DataCleaner.from_probs(session, files, probs, ['cat', 'dog'])
cleaner
''', '''print('READY')''']

def wait_for_file(path, timeout=30):
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline: time.sleep(0.2)
    return path.exists()

def test_relabel_through_the_rendered_widget(tmp_path, browser):
    write_notebook(tmp_path/'clean.ipynb', CELLS)
    src, dst = tmp_path/'pets/train/cat/img1.png', tmp_path/'pets/train/dog/img1.png'   # img1: the highest loss
    with JupyterLab(tmp_path) as lab, lab.browser() as page:
        from playwright.sync_api import expect
        lab.open(page, 'clean.ipynb')
        lab.run_all(page)
        lab.wait_for_text(page, 'READY')            # times out (fails) rather than hangs
        lab.wait_idle()
        cards = page.locator('.cleaner-card')
        expect(cards).to_have_count(2)
        assert 'img1.png' in cards.first.inner_text()
        cards.first.locator('.cleaner-decision select').select_option('dog')
        page.locator('.cleaner-pending', has_text='1 pending change').wait_for()
        assert src.exists() and not dst.exists()       # deciding moves nothing
        page.locator('button.cleaner-apply').click()
        page.locator('.cleaner-status', has_text='Applied: moved 1 file').wait_for()
        assert wait_for_file(dst) and not src.exists()
        expect(page.locator('.cleaner-card')).to_have_count(1)   # the relabelled image left the cat view
        page.locator('.widget-dropdown', has_text='class').locator('select').select_option('dog')
        moved = page.locator('.cleaner-card.cleaner-moved')
        expect(moved).to_have_count(1)                            # under dog now, marked as just moved
        text = moved.inner_text()
        assert 'img1.png' in text and 'just moved here' in text and 'label dog' in text and 'loss 0.11' in text
        page.locator('button.cleaner-undo').click()
        page.locator('.cleaner-status', has_text='Undone: moved back 1 file').wait_for()
        assert wait_for_file(src) and not dst.exists()
        assert '.cleaning' in {p.name for p in (tmp_path/'pets').iterdir()}
