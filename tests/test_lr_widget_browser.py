"""The LR widget in a real JupyterLab and a real browser: type a learning rate into the rendered slider, click
"Use this LR", and check on the kernel's side that the learner got it (the button's handler writes `learn.lr`, the
marker's position and the slider's value to a file)."""
import json, math, sys, time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lab_harness import JupyterLab, require_browser, write_notebook

@pytest.fixture(autouse=True)
def _browser():
    require_browser()            # skip with a reason on a laptop without a browser; fail in CI (CI=true)

CELLS = ['''
import json, os
from types import SimpleNamespace
import torch
from torch import nn
from course_lib.learner import Learner
from course_lib.optim import AdamW
from course_lib.lr_widget import LRWidget
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
x, y = torch.randn(128, 5, generator=g), torch.randint(0, 3, (128,), generator=g)
dls = SimpleNamespace(train=[(x[i:i+16], y[i:i+16]) for i in range(0, 128, 16)], valid=[(x[:32], y[:32])])
torch.manual_seed(0)
learn = Learner(nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)), dls, opt_func=AdamW, lr=1e-3,
                progress=False, device='cpu')

def record(lr, picker):
    "The kernel-side effect the test checks: what the learner holds after the click."
    state = {'learn_lr': learn.lr, 'marker': float(w.marker.get_xdata()[0]), 'slider': w.lr_slider.value,
             'peak': max(w.lr_line.get_ydata())}
    with open('chosen.json.tmp', 'w') as f: json.dump(state, f)
    os.replace('chosen.json.tmp', 'chosen.json')

w = LRWidget.from_learner(learn, n_epochs=2, on_use=record)
w
''', '''print('READY', learn.lr)''']

TARGET = 0.02

def test_slider_and_button_in_the_browser(tmp_path):
    write_notebook(tmp_path/'lr.ipynb', CELLS)
    out = tmp_path/'chosen.json'
    with JupyterLab(tmp_path) as lab, lab.browser() as page:
        lab.open(page, 'lr.ipynb')
        lab.run_all(page)
        lab.wait_for_text(page, 'READY')
        lab.wait_idle()
        img = page.locator('.lr-plot')
        img.wait_for()
        src0 = img.get_attribute('src')
        # type the LR into the slider's readout, as a user would, and press Enter
        readout = page.locator('.lr-slider .widget-readout')
        readout.click()
        page.keyboard.press('Control+A')
        page.keyboard.type(str(TARGET))
        page.keyboard.press('Enter')
        page.wait_for_function('([el, old]) => el.getAttribute("src") !== old', arg=[img.element_handle(), src0],
                               timeout=60_000)             # the kernel redrew the figure and the browser shows it
        assert not out.exists()                           # moving the slider hands nothing over
        page.locator('.lr-use').click()
        deadline = time.time() + 60
        while not out.exists() and time.time() < deadline: time.sleep(0.2)
        assert out.exists(), 'clicking "Use this LR" should run the handler in the kernel'
        state = json.loads(out.read_text())
        page.locator('.lr-status', has_text='learn.lr =').wait_for()
    assert math.isclose(state['slider'], TARGET, rel_tol=1e-6), state
    assert math.isclose(state['learn_lr'], TARGET, rel_tol=1e-6), state
    assert math.isclose(state['marker'], TARGET, rel_tol=1e-6), state
    assert math.isclose(state['peak'], TARGET, rel_tol=1e-3), state
