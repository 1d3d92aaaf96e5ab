"""The LR widget without a browser: ipywidgets 8 runs without a kernel (setting `.value` fires the observers,
`button.click()` runs the handlers), so we drive it like a user and check its state and its figure's data."""
import math
from types import SimpleNamespace

import matplotlib
matplotlib.use('Agg')
import numpy as np
import pytest
import torch
from torch import nn
from fastcore.test import test_close as assert_close, test_eq as assert_eq

from course_lib.learner import Learner
from course_lib.optim import AdamW
from course_lib.schedule import one_cycle_schedule
from course_lib.lr_find import LRFindResult, suggest_lrs
from course_lib.lr_widget import LRPicker, LRWidget


def curve(n=100):
    "A synthetic finder curve: flat, falling, then exploding."
    lrs = np.geomspace(1e-7, 10, n)
    x = np.log10(lrs)
    losses = 2.3 - 1.8/(1 + np.exp(-(x + 3)*2)) + np.exp(3*(x - 0.3))
    return suggest_lrs(lrs, losses, skip_start=n//10)

def tiny_learner():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)
    dls = SimpleNamespace(train=[(x[i:i+16], y[i:i+16]) for i in range(0, 64, 16)], valid=[(x[:16], y[:16])])
    torch.manual_seed(0)
    return Learner(nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)), dls, opt_func=AdamW, lr=1e-3,
                   progress=False, device='cpu')

@pytest.fixture
def widget():
    res, learn = curve(), tiny_learner()
    used = []
    w = LRWidget(LRPicker(res, n_steps=120), learn, on_use=lambda lr, p: used.append(lr))
    w.used = used
    return w

def test_picker_defaults_and_schedule():
    res = curve()
    p = LRPicker(res, n_steps=50)
    assert_eq(p.lr, res.valley)
    assert_eq((p.lr_min, p.lr_max), (res.lrs[0], res.lrs[-1]))
    p.lr, p.pct_start, p.div, p.div_final = 1e-3, 0.4, 10., 1e3
    assert_eq(p.schedule(), one_cycle_schedule(50, 1e-3, 0.4, 10., 1e3))
    assert_eq(p.fit_kwargs(), dict(lr_max=1e-3, pct_start=0.4, div=10., div_final=1e3, moms=(0.95, 0.85, 0.95)))
    p.lr = 1e6; assert_eq(p.lr, p.lr_max)                 # kept on the recorded curve
    p.lr = 1e-12; assert_eq(p.lr, p.lr_min)
    for bad in (0., -1., float('nan'), float('inf')):
        with pytest.raises(ValueError, match='positive number'): p.lr = bad
    assert_close(p.loss_at(1e-3), res.loss_at(1e-3))

def test_picker_nan_safe():
    lrs = np.geomspace(1e-5, 1, 20)
    losses = np.r_[np.linspace(2, 1, 12), [np.nan]*8]
    res = suggest_lrs(lrs, losses)
    p = LRPicker(res, n_steps=10)
    assert math.isfinite(p.lr) and p.lr_max == lrs[11]         # the curve ends at the first NaN
    nothing = LRFindResult(math.nan, math.nan, math.nan, math.nan, lrs=[1e-3], losses=[math.nan])
    with pytest.raises(ValueError, match='fewer than two finite losses'): LRPicker(nothing, n_steps=10)
    all_nan = LRFindResult(math.nan, math.nan, math.nan, math.nan, lrs=[1e-3, 1e-2], losses=[1., 2.])
    assert_close(LRPicker(all_nan, n_steps=10).lr, math.sqrt(1e-3*1e-2))   # no finite suggestion: middle of the curve

def test_slider_moves_marker_and_schedule(widget):
    w = widget
    png0 = w.image.value
    assert png0[:8] == b'\x89PNG\r\n\x1a\n'
    w.lr_slider.value = 1e-2
    assert_close(w.picker.lr, 1e-2, eps=1e-15)
    assert_close(w.marker.get_xdata()[0], 1e-2, eps=1e-15)
    assert_close(w.marker.get_ydata()[0], w.picker.res.loss_at(1e-2))
    lrs, moms = w.picker.schedule()
    assert_eq(len(lrs), 120)
    assert_close(list(w.lr_line.get_ydata()), lrs); assert_close(list(w.mom_line.get_ydata()), moms)
    assert_close(max(w.lr_line.get_ydata()), 1e-2, eps=1e-4)
    assert w.image.value != png0, 'the image should be redrawn'
    assert '1e-02' in w.status.value or '0.01' in w.status.value

def test_cycle_controls_redraw(widget):
    w = widget
    w.lr_slider.value = 1e-3
    w.pct_slider.value = 0.5
    w.div_slider.value = 10.
    w.div_final_slider.value = 1e3
    p = w.picker
    assert_eq((p.pct_start, p.div, p.div_final), (0.5, 10., 1e3))
    lrs, moms = one_cycle_schedule(120, 1e-3, 0.5, 10., 1e3)
    assert_close(list(w.lr_line.get_ydata()), lrs); assert_close(list(w.mom_line.get_ydata()), moms)
    assert_close(w.lr_line.get_ydata()[0], 1e-4); assert_close(w.lr_line.get_ydata()[-1], 1e-6)
    assert int(np.argmax(w.lr_line.get_ydata())) == 59                      # peak at pct_start*n - 1
    assert_close(min(w.mom_line.get_ydata()), 0.85, eps=1e-3)

def test_button_hands_lr_to_learner(widget):
    w = widget
    assert_eq(w.learn.lr, 1e-3)
    w.lr_slider.value = 3e-2
    w.button.click()
    assert_close(w.learn.lr, 3e-2, eps=1e-15)
    assert_eq(w.picker.chosen, [w.learn.lr]); assert_eq(w.used, [w.learn.lr])
    assert 'learn.lr' in w.status.value
    w.lr_slider.value = 5e-3; w.button.click()
    assert_close(w.learn.lr, 5e-3, eps=1e-15); assert_eq(len(w.picker.chosen), 2)

def test_slider_range_is_the_curve(widget):
    w = widget
    assert_close(10**w.lr_slider.min, w.picker.lr_min, eps=1e-12)
    assert_close(10**w.lr_slider.max, w.picker.lr_max, eps=1e-9)

def test_from_learner_runs_lr_find_and_restores():
    learn = tiny_learner()
    w0 = {k: v.clone() for k, v in learn.model.state_dict().items()}
    w = LRWidget.from_learner(learn, n_epochs=3)
    assert_eq(w.picker.n_steps, 3*len(learn.dls.train))
    for k, v in learn.model.state_dict().items(): assert torch.equal(v, w0[k])
    for v in w.picker.res.suggestions.values(): assert type(v) is float
    w.lr_slider.value = w.picker.res.steep if math.isfinite(w.picker.res.steep) else w.lr_slider.value
    w.button.click()
    assert_close(learn.lr, w.picker.lr, eps=1e-15)
    learn.fit_one_cycle(1, **w.picker.fit_kwargs())          # the settings are valid fit_one_cycle arguments
