"""The Learner, its callbacks and Recorder, freezing and checkpoints; our optimizers and schedules (checked against torch),
fine_tune, and the LR finder."""
import math
from copy import deepcopy
from functools import partial
from types import SimpleNamespace

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from fastcore.test import test_close as assert_close, test_eq as assert_eq

from collections import OrderedDict

from course_lib.learner import *
from course_lib.optim import *
from course_lib.schedule import *
from course_lib.lr_find import *


def make_dls(n_train=160, n_valid=64, bs=16, seed=0, n_in=10, n_out=3):
    "A small classification problem as lists of batches (any iterable of (xb, yb) with len works as a loader)."
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_in, n_out, generator=g)
    def split(n):
        x = torch.randn(n, n_in, generator=g)
        y = (x @ w).argmax(1)
        return [(x[i:i+bs], y[i:i+bs]) for i in range(0, n, bs)]
    return SimpleNamespace(train=split(n_train), valid=split(n_valid))

def make_model(seed=0, n_in=10, n_out=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 16), nn.ReLU(), nn.Linear(16, n_out))

def compare_optimizers(ours, theirs, n_steps=25, seed=0, model=None, groups=None):
    "Train two copies of a small model with `ours` and `theirs` (functions of parameter groups) on the same random batches; the largest parameter difference after each step."
    g = torch.Generator().manual_seed(seed)
    m1 = model if model is not None else nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    m2 = deepcopy(m1)
    split = groups or (lambda m: [list(m.parameters())])
    o1, o2 = ours([{'params': ps} for ps in split(m1)]), theirs([{'params': ps} for ps in split(m2)])
    diffs = []
    for _ in range(n_steps):
        x, y = torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)
        for m, o in ((m1, o1), (m2, o2)):
            F.cross_entropy(m(x), y).backward(); o.step(); o.zero_grad()
        diffs.append(max((p - q).abs().max().item() for p, q in zip(m1.parameters(), m2.parameters())))
    return diffs

class EventLog(Callback):
    def __init__(self): self.log = []
for _e in EVENTS:
    if _e not in ('predict', 'get_loss', 'backward', 'step', 'zero_grad'):
        setattr(EventLog, _e, (lambda e: lambda self, learn: self.log.append(e))(_e))

def learner(**kw):
    kw.setdefault('progress', False); kw.setdefault('device', 'cpu')
    return Learner(kw.pop('model', None) or make_model(), kw.pop('dls', None) or make_dls(), **kw)

@pytest.fixture(autouse=True)
def _close_figs():
    yield
    plt.close('all')

# ---------------------------------------------------------------- the loop and its callbacks

def test_event_order_one_epoch():
    log = EventLog()
    dls = make_dls(n_train=32, n_valid=16)          # 2 training batches, 1 validation batch
    learner(dls=dls, cbs=[log]).fit(1)
    batch_train = ['before_batch', 'before_predict', 'after_predict', 'before_loss', 'after_loss', 'before_backward',
                   'after_backward', 'before_step', 'after_step', 'after_batch', 'cleanup_batch']
    batch_valid = ['before_batch', 'before_predict', 'after_predict', 'before_loss', 'after_loss', 'after_batch', 'cleanup_batch']
    want = (['before_fit', 'before_epoch'] + batch_train*2 + ['after_epoch', 'cleanup_epoch', 'before_epoch'] + batch_valid
            + ['after_epoch', 'cleanup_epoch', 'after_fit', 'cleanup_fit'])
    assert_eq(log.log, want)

def test_callbacks_run_by_order():
    seen = []
    class A(Callback):
        order = 5
        def before_fit(self, learn): seen.append('A')
    class B(Callback):
        order = -5
        def before_fit(self, learn): seen.append('B')
    learner(cbs=[A(), B()]).fit(1)
    assert_eq(seen, ['B', 'A'])

def test_cancel_fit_skips_after_fit_but_runs_cleanup():
    class Stop(Callback):
        n = 0
        def after_batch(self, learn):
            self.n += 1
            if self.n == 3: raise CancelFitException()
    log = EventLog()
    learner(cbs=[Stop(), log]).fit(4)
    assert_eq(log.log.count('before_batch'), 3)
    assert 'after_fit' not in log.log and log.log[-1] == 'cleanup_fit'

def test_cancel_epoch_skips_validation():
    class NoValid(Callback):
        def before_epoch(self, learn):
            if not learn.training: raise CancelEpochException()
    log = EventLog()
    dls = make_dls(n_train=32, n_valid=16)
    learner(dls=dls, cbs=[NoValid(), log]).fit(2)
    assert_eq(log.log.count('before_batch'), 4)       # 2 epochs x 2 training batches, no validation batch
    assert_eq(log.log.count('cleanup_epoch'), 4)

def test_cancel_batch_before_step_keeps_weights():
    class NoStep(Callback):
        def before_step(self, learn): raise CancelBatchException()
    model = make_model(); w0 = deepcopy(model.state_dict())
    log = EventLog()
    learner(model=model, cbs=[NoStep(), log]).fit(1)
    for k, v in model.state_dict().items(): assert_eq(v, w0[k])
    assert_eq(log.log.count('after_step'), 0)
    assert log.log.count('before_batch') == len(make_dls().train) + len(make_dls().valid)

def test_cleanup_runs_on_error():
    class Boom(Callback):
        def after_loss(self, learn): raise RuntimeError('boom')
    log = EventLog()
    with pytest.raises(RuntimeError, match='boom'): learner(cbs=[Boom(), log]).fit(1)
    assert_eq(log.log[-3:], ['cleanup_batch', 'cleanup_epoch', 'cleanup_fit'])

def test_misspelt_event_is_refused():
    class Typo(Callback):
        def before_fitt(self, learn): pass
    with pytest.raises(AttributeError, match='before_fitt'): learner(cbs=[Typo()])

def test_fit_callbacks_are_temporary():
    learn = learner()
    n = len(learn.cbs)
    learn.fit(1, cbs=[EventLog()])
    assert_eq(len(learn.cbs), n)

def test_learner_matches_raw_loop():
    dls = make_dls()
    raw = make_model(1); opt = torch.optim.SGD(raw.parameters(), lr=0.2)
    for xb, yb in dls.train:
        F.cross_entropy(raw(xb), yb).backward(); opt.step(); opt.zero_grad()
    with torch.no_grad(): want = sum(F.cross_entropy(raw(x), y, reduction='sum').item() for x, y in dls.valid) / 64
    learn = learner(model=make_model(1), dls=dls, lr=0.2)
    learn.fit(1)
    assert_close(learn.cb(MetricsCB).last['valid_loss'], want, eps=1e-6)
    for p, q in zip(learn.model.parameters(), raw.parameters()): assert_close(p, q, eps=1e-6)

def test_metrics_and_get_preds():
    learn = learner(metrics=[accuracy], lr=0.3)
    learn.fit(3)
    hist = learn.cb(MetricsCB).history
    assert_eq([h['epoch'] for h in hist], [0, 1, 2])
    assert set(hist[0]) == {'epoch', 'train_loss', 'valid_loss', 'accuracy', 'time'}
    probs, targs = learn.get_preds()
    assert_eq(probs.shape, (64, 3)); assert_close(probs.sum(1), torch.ones(64))
    assert_close(accuracy(probs, targs).item(), hist[-1]['accuracy'], eps=1e-6)
    assert_close(error_rate(probs, targs).item(), 1 - hist[-1]['accuracy'], eps=1e-6)
    assert hist[-1]['accuracy'] > 0.6 and hist[-1]['valid_loss'] < hist[0]['valid_loss']

def test_get_preds_keeps_training_mode_and_raw_outputs():
    learn = learner(loss_func=lambda p, y: F.cross_entropy(p, y))
    learn.model.train()
    preds, _ = learn.get_preds()
    assert learn.model.training
    assert not torch.allclose(preds.sum(1), torch.ones(len(preds)))   # not a cross-entropy function: raw scores

def test_progress_cb_console_runs():
    learn = learner(progress=True, metrics=[accuracy])
    learn.fit(1)
    assert learn.cb(ProgressCB) is not None and len(learn.recorder.losses) == len(learn.dls.train)

def test_recorder_records_losses_lrs_and_history():
    learn = learner(metrics=[accuracy], lr=0.2)
    assert isinstance(learn.recorder, Recorder)
    learn.fit(2)
    rec, n = learn.recorder, len(learn.dls.train)
    assert_eq(len(rec.losses), 2*n); assert_eq(rec.lrs, [0.2]*(2*n))
    assert rec.history is learn.cb(MetricsCB).history and len(rec.history) == 2
    assert_eq([x for x, _ in rec.valid_losses], [n, 2*n])
    assert_eq([v for _, v in rec.valid_losses], [h['valid_loss'] for h in rec.history])
    assert_close(np.mean(rec.losses[-n:]), rec.history[-1]['train_loss'], eps=1e-5)   # equal-sized batches
    ax = rec.plot_loss()
    assert_eq(len(ax.lines), 2)
    learn.fit(1)                                          # a new fit starts a new record
    assert_eq(len(rec.losses), n)

def test_recorder_follows_a_schedule():
    learn = learner(opt_func=partial(torch.optim.SGD, momentum=0.9))
    learn.fit_one_cycle(1, 0.1)
    assert_close(learn.recorder.lrs, one_cycle_schedule(len(learn.dls.train), 0.1)[0])

def test_recorder_last_group_lr():
    learn = learner(lr=[1e-3, 1e-2], splitter=lambda m: [list(m[0].parameters()), list(m[2].parameters())])
    learn.fit(1)
    assert_eq(set(learn.recorder.lrs), {1e-2})

def test_lrs_for_groups():
    assert_eq(lrs_for_groups(0.1, 3), [0.1]*3)
    assert_close(lrs_for_groups(slice(1e-3, 1e-1), 3), [1e-3, 1e-2, 1e-1])
    assert_eq(lrs_for_groups(slice(1e-1), 3), [1e-2, 1e-2, 1e-1])
    with pytest.raises(ValueError, match='one per group'): lrs_for_groups([1, 2], 3)

# ---------------------------------------------------------------- optimizers against torch.optim

OPT_CASES = {
    'sgd': (partial(SGD, lr=0.1), partial(torch.optim.SGD, lr=0.1)),
    'sgd_mom_wd': (partial(SGD, lr=0.1, mom=0.9, wd=1e-2), partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=1e-2)),
    'rmsprop': (partial(RMSProp, lr=1e-2, sqr_mom=0.9), partial(torch.optim.RMSprop, lr=1e-2, alpha=0.9)),
    'rmsprop_mom_wd': (partial(RMSProp, lr=1e-2, sqr_mom=0.9, mom=0.5, wd=1e-3),
                       partial(torch.optim.RMSprop, lr=1e-2, alpha=0.9, momentum=0.5, weight_decay=1e-3)),
    'adam': (partial(Adam, lr=1e-2), partial(torch.optim.Adam, lr=1e-2)),
    'adam_l2': (partial(Adam, lr=1e-2, mom=0.8, sqr_mom=0.99, wd=1e-2),
                partial(torch.optim.Adam, lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2)),
    'adamw': (partial(AdamW, lr=1e-2, mom=0.8, sqr_mom=0.99, wd=0.1),
              partial(torch.optim.AdamW, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1)),
}

@pytest.mark.parametrize('name', OPT_CASES)
def test_optimizer_matches_torch_every_step(name):
    ours, theirs = OPT_CASES[name]
    m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    w0 = deepcopy(m.state_dict())
    diffs = compare_optimizers(ours, theirs, n_steps=25, model=m)
    assert_eq(len(diffs), 25)
    for d in diffs: assert_close(d, 0., eps=1e-6)
    assert max((m.state_dict()[k] - w0[k]).abs().max().item() for k in w0) > 1e-3, 'the weights should have moved'

def test_optimizer_check_catches_a_difference():
    assert max(compare_optimizers(partial(SGD, lr=0.1, mom=0.8), partial(torch.optim.SGD, lr=0.1, momentum=0.9))) > 1e-4
    assert max(compare_optimizers(partial(AdamW, lr=1e-2, wd=0.1), partial(torch.optim.Adam, lr=1e-2, weight_decay=0.1))) > 1e-4

def test_param_groups_match_torch():
    split = lambda m: [list(m[0].parameters()), list(m[2].parameters())]
    ours = lambda gs: AdamW([{**gs[0], 'lr': 1e-3}, {**gs[1], 'lr': 1e-2}])
    theirs = lambda gs: torch.optim.AdamW([{**gs[0], 'lr': 1e-3}, {**gs[1], 'lr': 1e-2}])
    diffs = compare_optimizers(ours, theirs, n_steps=20, groups=split)
    assert_close(max(diffs), 0., eps=1e-6)

def test_discriminative_lrs_in_learner():
    "Plain SGD: a group's update is exactly its lr times its gradient, so two groups with lrs 10x apart move 10x apart."
    model = make_model()
    learn = learner(model=model, lr=[1e-3, 1e-2], opt_func=SGD,
                    splitter=lambda m: [list(m[0].parameters()), list(m[2].parameters())])
    learn.create_opt()
    assert_eq([g['lr'] for g in learn.opt.param_groups], [1e-3, 1e-2])
    xb, yb = learn.dls.train[0]
    F.cross_entropy(model(xb), yb).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    w0 = [p.detach().clone() for p in model.parameters()]
    learn.opt.step()
    for p, q, g, lr in zip(model.parameters(), w0, grads, [1e-3, 1e-3, 1e-2, 1e-2]): assert_close(q - p.detach(), lr*g, eps=1e-7)

def test_optimizer_state_dict_roundtrip():
    m = make_model(); opt = Adam(m.parameters(), lr=1e-2)
    xb, yb = make_dls().train[0]
    F.cross_entropy(m(xb), yb).backward(); opt.step()
    sd = deepcopy(opt.state_dict())
    F.cross_entropy(m(xb), yb).backward(); opt.step()
    opt.load_state_dict(sd)
    assert_eq(opt.state_dict()['state'][0]['step'], 1)
    with pytest.raises(ValueError, match='no parameters'): SGD([])

# ---------------------------------------------------------------- schedules against OneCycleLR

def torch_one_cycle(opt_cls, n, lr_max, pct_start, div, div_final, moms, **kw):
    opt = opt_cls([nn.Parameter(torch.zeros(1))], lr=lr_max, **kw)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr_max, total_steps=n, pct_start=pct_start, div_factor=div,
                                                final_div_factor=div_final/div, base_momentum=moms[1], max_momentum=moms[0])
    lrs, ms = [], []
    for i in range(n):
        g = opt.param_groups[0]
        lrs.append(g['lr']); ms.append(g['betas'][0] if 'betas' in g else g['momentum'])
        opt.step()
        if i < n - 1: sched.step()
    return lrs, ms

@pytest.mark.parametrize('n,pct,lr_max,div,div_final,opt', [
    (100, 0.25, 0.1, 25., 1e5, 'sgd'), (37, 0.3, 3e-3, 10., 1e4, 'adam'), (10, 0.25, 1., 25., 1e5, 'sgd'),
    (250, 0.5, 2e-2, 5., 1e3, 'adam'), (7, 0.9, 1e-3, 25., 1e5, 'sgd')])
def test_one_cycle_matches_torch_every_step(n, pct, lr_max, div, div_final, opt):
    moms = (0.95, 0.85, 0.95)
    cls, kw = (torch.optim.SGD, {'momentum': 0.9}) if opt == 'sgd' else (torch.optim.Adam, {})
    t_lrs, t_moms = torch_one_cycle(cls, n, lr_max, pct, div, div_final, moms, **kw)
    o_lrs, o_moms = one_cycle_schedule(n, lr_max, pct, div, div_final, moms)
    assert_eq(len(o_lrs), n)
    assert_close(o_lrs, t_lrs, eps=1e-10); assert_close(o_moms, t_moms, eps=1e-10)

def test_schedules():
    assert_close(sched_lin(1., 3.)(0.5), 2.)
    assert_close([sched_cos(1., 0.)(p) for p in (0, .5, 1)], [1., .5, 0.])
    assert_close(sched_exp(1e-4, 1.)(0.25), 1e-3)
    f = combine_scheds([0.25, 0.75], [sched_lin(0., 1.), sched_lin(1., 0.)])
    assert_close([f(0.), f(0.25), f(0.625), f(1.)], [0., 1., 0.5, 0.])
    with pytest.raises(ValueError, match='summing to 1'): combine_scheds([0.5, 0.6], [sched_lin(0, 1)]*2)

def test_fit_one_cycle_applies_schedule_and_restores():
    learn = learner(opt_func=partial(torch.optim.SGD, momentum=0.9), lr=0.05)
    sched = learn.fit_one_cycle(2, 0.1)
    n = 2*len(learn.dls.train)
    want_lrs, want_moms = one_cycle_schedule(n, 0.1)
    assert_close(sched.hist['lr'][0], want_lrs); assert_close(sched.hist['mom'][0], want_moms)
    assert_eq(learn.opt.param_groups[0]['momentum'], 0.9)
    assert_eq(learn.opt.param_groups[0]['lr'], 0.05)

def test_fit_one_cycle_per_group_lr_max():
    learn = learner(opt_func=AdamW, splitter=lambda m: [list(m[0].parameters()), list(m[2].parameters())])
    sched = learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    n = len(learn.dls.train)
    for h, lr_max in zip(sched.hist['lr'], (1e-4, 1e-2)): assert_close(h, one_cycle_schedule(n, lr_max)[0])
    assert_eq(sched.hist['mom'][0], sched.hist['mom'][1])

# ---------------------------------------------------------------- the LR finder

def snapshot(learn):
    return deepcopy(learn.model.state_dict()), deepcopy(learn.opt.state_dict()) if learn.opt is not None else None

def same(a, b):
    "Exact equality of nested dicts/lists of tensors and numbers."
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor): return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b

def assert_same_state(learn, snap):
    assert same(learn.model.state_dict(), snap[0])
    if snap[1] is not None: assert same(learn.opt.state_dict(), snap[1])
    else: assert learn.opt is None

def test_lr_find_restores_model_and_optimizer():
    learn = learner(opt_func=Adam, lr=1e-3)
    learn.fit(1)                                    # the optimizer now has state worth keeping
    snap = snapshot(learn)
    res = learn.lr_find(num_it=30, show_plot=False)
    assert_same_state(learn, snap)
    for k, v in res.suggestions.items(): assert type(v) is float and math.isfinite(v), (k, v)
    assert 1e-7 <= min(res.suggestions.values()) and max(res.suggestions.values()) <= 10

def test_lr_find_without_optimizer_leaves_none():
    learn = learner()
    snap = (deepcopy(learn.model.state_dict()), None)
    learn.lr_find(num_it=20, show_plot=False)
    assert_same_state(learn, snap)

def test_lr_find_few_iterations_and_small_data():
    dls = make_dls(n_train=48, n_valid=16)           # 3 batches, fewer than num_it: loop over the loader
    learn = learner(dls=dls, opt_func=SGD)
    snap = (deepcopy(learn.model.state_dict()), None)
    res = learn.lr_find(num_it=10, stop_div=False)
    assert_eq(len(res.lrs), 10)
    assert_close(res.lrs[0], 1e-7); assert_close(res.lrs[-1], 10.)
    for v in res.suggestions.values(): assert type(v) is float
    assert res.fig is not None
    assert_same_state(learn, snap)

def test_lr_find_stops_on_divergence():
    learn = learner(opt_func=SGD)
    res = learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=200, show_plot=False)
    assert len(res.lrs) < 200
    assert res.losses[-1] > 4*min(res.losses) or not math.isfinite(res.losses[-1])

def test_lr_find_stops_on_nan_and_restores():
    class NaNAfter(Callback):
        order = 35
        n = 0
        def after_loss(self, learn):
            self.n += 1
            if self.n >= 8: learn.loss = learn.loss*float('nan')
    learn = learner(opt_func=SGD, cbs=[NaNAfter()])
    snap = (deepcopy(learn.model.state_dict()), None)
    res = learn.lr_find(num_it=50, stop_div=False)
    assert_eq(len(res.lrs), 8)
    assert math.isnan(res.losses[-1])
    for v in res.suggestions.values(): assert type(v) is float      # NaN-safe: floats (here finite, from 7 points)
    assert_same_state(learn, snap)
    for p in learn.model.parameters(): assert torch.isfinite(p).all()

def test_suggestions_nan_safe_on_degenerate_curves():
    for lrs, losses in [([], []), ([1e-3], [1.]), ([1e-3, 1e-2], [float('nan'), 1.])]:
        res = suggest_lrs(lrs, losses)
        for v in res.suggestions.values(): assert type(v) is float and math.isnan(v)
    res = suggest_lrs([1e-4, 1e-3, 1e-2, 1e-1], [2., 1., 0.5, float('inf')])
    for v in res.suggestions.values(): assert type(v) is float and math.isfinite(v)

def test_suggestions_match_fastai_on_same_curve():
    from fastai.callback.schedule import valley, steep, minimum, slide
    rng = np.random.default_rng(0)
    for trial in range(5):
        n = 100
        lrs = np.geomspace(1e-7, 10, n)
        x = np.log10(lrs)
        losses = 2.3 - 1.5/(1 + np.exp(-(x + 3 - trial*0.3)*2)) + np.exp(3*(x - 0.3)) + rng.normal(0, 0.01, n)
        c_lrs, c_losses = suggestion_curve(lrs, losses, skip_start=10)
        t_lrs, t_losses = torch.tensor(c_lrs), torch.tensor(c_losses)
        for ours, theirs in [(lr_valley, valley), (lr_steep, steep), (lr_minimum, minimum), (lr_slide, slide)]:
            assert_close(ours(c_lrs, c_losses), theirs(t_lrs, t_losses, n)[0], eps=1e-12)

# ---------------------------------------------------------------- freezing, checkpoints, fine_tune

def body_head_model(seed=0, n_in=10, n_out=3):
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(body=nn.Sequential(nn.Linear(n_in, 16), nn.BatchNorm1d(16), nn.ReLU()),
                                     head=nn.Linear(16, n_out)))

def test_freeze_keeps_batchnorm_trainable_and_unfreeze_restores():
    m = body_head_model()
    freeze_body(m)
    assert_eq([p.requires_grad for p in m.body.parameters()], [False, False, True, True])
    assert all(p.requires_grad for p in m.head.parameters())
    freeze_body(m, train_bn=False)
    assert not any(p.requires_grad for p in m.body.parameters())
    unfreeze(m)
    assert all(p.requires_grad for p in m.parameters())
    assert_eq([len(g) for g in body_head_splitter(m)], [4, 2])
    with pytest.raises(AttributeError, match='body'): body_head_splitter(nn.Linear(2, 2))
    with pytest.raises(AttributeError, match='body'): freeze_body(nn.Linear(2, 2))

def test_frozen_body_does_not_move():
    m = body_head_model()
    w0, h0 = m.body[0].weight.detach().clone(), m.head.weight.detach().clone()
    freeze_body(m)
    learner(model=m, splitter=body_head_splitter).fit(1)
    assert torch.equal(m.body[0].weight, w0) and not torch.equal(m.head.weight, h0)

def test_save_load_round_trip(tmp_path):
    m = body_head_model(1).eval()
    path = save_model(m, tmp_path/'models'/'m.pth')
    assert path.is_file() and not list(path.parent.glob('.*.tmp'))
    fresh = load_model(body_head_model(2), path).eval()
    x = torch.randn(4, 10)
    with torch.no_grad(): assert_close(fresh(x), m(x), eps=1e-6)
    with pytest.raises(FileNotFoundError, match='save_model'): load_model(body_head_model(), tmp_path/'missing.pth')
    with pytest.raises(RuntimeError, match='same architecture'): load_model(make_model(), path)

def test_save_overwrites_atomically_and_load_refuses_objects(tmp_path):
    a, b = body_head_model(1), body_head_model(2)
    path = save_model(a, tmp_path/'m.pth')
    save_model(b, path)
    assert_eq(sorted(p.name for p in tmp_path.iterdir()), ['m.pth'])
    for k, v in load_model(body_head_model(3), path).state_dict().items(): assert_eq(v, b.state_dict()[k])
    torch.save({'payload': SimpleNamespace(a=1)}, tmp_path/'bad.pth')
    with pytest.raises(Exception, match='Weights only load failed'): load_model(body_head_model(), tmp_path/'bad.pth')

def test_fine_tune_freezes_then_uses_discriminative_lrs():
    class GroupLRs(Callback):
        def before_fit(self, learn): self.lrs = []
        def after_step(self, learn): self.lrs.append([g['lr'] for g in learn.opt.param_groups])
    class BodyMoved(Callback):
        def __init__(self): self.moved = []
        def before_fit(self, learn): self.w0 = learn.model.body[0].weight.detach().clone()
        def after_fit(self, learn): self.moved.append(not torch.equal(self.w0, learn.model.body[0].weight))
    learn = learner(model=body_head_model(), splitter=body_head_splitter, opt_func=AdamW)
    rec, moved = GroupLRs(), BodyMoved()
    assert learn.fine_tune(2, 1e-2, freeze_epochs=1, lr_mult=10, cbs=[rec, moved]) is learn
    assert_eq(moved.moved, [False, True])
    lrs = np.array(rec.lrs)
    assert_close(lrs[:, 1]/lrs[:, 0], np.full(len(lrs), 10.), eps=1e-6)
    assert_close(list(lrs[:, 1]), one_cycle_schedule(2*len(learn.dls.train), 1e-2)[0])
    assert all(p.requires_grad for p in learn.model.parameters())

def test_learner_module_imports_no_widgets_or_matplotlib():
    import subprocess, sys
    code = "import sys, course_lib.learner; print(sorted(m for m in ('matplotlib', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert_eq(out, '[]')
