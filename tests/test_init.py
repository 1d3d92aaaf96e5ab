"Fast checks of course_lib.init: norms against torch (train/eval/gradients), hooks (from course_lib.hooks) as lesson 11 uses them, ActivationStats, GeneralRelu, LSUV."
import math
from functools import partial

import matplotlib
matplotlib.use('Agg')
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from fastcore.test import test_close as assert_close

from course_lib.cnn import conv_block
from course_lib.hooks import Hook, Hooks, find_modules
from course_lib.init import (ActivationStats, GeneralRelu, init_weights,
                             BatchNorm, LayerNorm, InstanceNorm, GroupNorm, lsuv_init)


def n_hooks(model): return sum(len(m._forward_hooks) for m in model.modules())


def small_cnn(act=nn.ReLU, norm=None):
    "Lesson 11's kind of CNN, from lesson 04's conv_block: three blocks, global average pooling, a linear head."
    return nn.Sequential(conv_block(1, 4, stride=1, act=act, norm=norm), conv_block(4, 8, act=act, norm=norm),
                         conv_block(8, 16, act=act, norm=norm), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def compare_norms(ours, theirs, shape, n_train=3, eps=1e-5, seed=0):
    "Same random weights; n_train training batches then one eval batch: outputs, running stats, input/param grads."
    g = torch.Generator().manual_seed(seed)
    ours, theirs = ours.double(), theirs.double()
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype)); q.copy_(p)
    for training in [True] * n_train + [False]:
        ours.train(training); theirs.train(training)
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 1
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        oa, ob = ours(xa), theirs(xb)
        assert oa.shape == ob.shape
        assert_close(oa, ob, eps=eps)
        w = torch.randn(oa.shape, generator=g, dtype=torch.float64)
        (oa * w).sum().backward(); (ob * w).sum().backward()
        assert_close(xa.grad, xb.grad, eps=eps)
        ps, qs = list(ours.parameters()), list(theirs.parameters())
        assert len(ps) == len(qs)
        for p, q in zip(ps, qs):
            assert_close(p.grad, q.grad, eps=eps); p.grad = q.grad = None
        for name in ('running_mean', 'running_var'):
            if getattr(theirs, name, None) is not None: assert_close(getattr(ours, name), getattr(theirs, name), eps=eps)


NORM_CASES = {
    'bn2d': (lambda: BatchNorm(6), lambda: nn.BatchNorm2d(6), (8, 6, 5, 5)),
    'bn1d': (lambda: BatchNorm(6), lambda: nn.BatchNorm1d(6), (16, 6)),
    'bn_momentum_noaffine': (lambda: BatchNorm(6, momentum=0.3, affine=False), lambda: nn.BatchNorm2d(6, momentum=0.3, affine=False), (4, 6, 3, 3)),
    'ln_chw': (lambda: LayerNorm([6, 5, 5]), lambda: nn.LayerNorm([6, 5, 5]), (4, 6, 5, 5)),
    'ln_last': (lambda: LayerNorm(7), lambda: nn.LayerNorm(7), (3, 4, 7)),
    'in_default': (lambda: InstanceNorm(6), lambda: nn.InstanceNorm2d(6), (4, 6, 5, 5)),
    'in_tracked': (lambda: InstanceNorm(6, affine=True, track_running_stats=True),
                   lambda: nn.InstanceNorm2d(6, affine=True, track_running_stats=True), (4, 6, 5, 5)),
    'gn': (lambda: GroupNorm(3, 6), lambda: nn.GroupNorm(3, 6), (4, 6, 5, 5)),
    'gn_noaffine': (lambda: GroupNorm(2, 6, affine=False), lambda: nn.GroupNorm(2, 6, affine=False), (4, 6, 5, 5)),
}

@pytest.mark.parametrize('case', list(NORM_CASES))
def test_norm_matches_torch(case):
    ours, theirs, shape = NORM_CASES[case]
    compare_norms(ours(), theirs(), shape)


def test_norm_check_can_fail():
    "The comparison catches a wrong formula (running variance without the n/(n-1) correction)."
    class Biased(BatchNorm):
        def forward(self, x):
            out = super().forward(x)
            if self.training:
                n = x.numel() // x.shape[1]
                with torch.no_grad(): self.running_var.sub_(self.momentum * (n / (n - 1) - 1) * x.var([0, 2, 3], correction=0))
            return out
    with pytest.raises(AssertionError): compare_norms(Biased(4), nn.BatchNorm2d(4), (2, 4, 2, 2))


def test_norm_float32_close_relative():
    "In float32 our BatchNorm agrees with torch's to 1e-5 relative to the size of the values."
    torch.manual_seed(0)
    ours, theirs = BatchNorm(8), nn.BatchNorm2d(8)
    x = torch.randn(16, 8, 7, 7) * 3 + 1
    for _ in range(3): assert_close(ours(x), theirs(x), eps=1e-5 * 10)
    assert_close(ours.running_var, theirs.running_var, eps=1e-5)


def test_norm_errors():
    with pytest.raises(ValueError, match='more than one value per channel'): BatchNorm(3)(torch.randn(1, 3))
    with pytest.raises(ValueError, match='cannot be split'): GroupNorm(4, 6)
    with pytest.raises(ValueError, match='last dimensions'): LayerNorm(5)(torch.randn(2, 7))


def test_batchnorm_eval_independent_of_batch():
    bn = BatchNorm(3)
    x = torch.randn(8, 3, 4, 4)
    bn(x); bn.eval()
    assert_close(bn(x)[:1], bn(x[:1]))


def test_group_norm_special_cases():
    x = torch.randn(4, 6, 5, 5)
    assert_close(GroupNorm(1, 6, affine=False)(x), LayerNorm([6, 5, 5], elementwise_affine=False)(x))
    assert_close(GroupNorm(6, 6, affine=False)(x), InstanceNorm(6)(x))


def test_hook_removed_after_with_and_on_error():
    model = small_cnn()
    def keep(hook, mod, inp, outp): hook.out = outp
    with Hook(model[0], keep) as h:
        assert n_hooks(model) == 1
        model(torch.randn(2, 1, 8, 8))
    assert n_hooks(model) == 0 and h.out.shape == (2, 4, 8, 8)
    with pytest.raises(RuntimeError):
        with Hooks(find_modules(model, nn.ReLU), keep) as hs:
            assert n_hooks(model) == 3 and len(hs) == 3
            raise RuntimeError('boom')
    assert n_hooks(model) == 0


def test_activation_stats_standalone():
    torch.manual_seed(0)
    model = small_cnn()
    with ActivationStats(nn.ReLU, nbins=20, hmax=5.).attach(model) as st:
        for _ in range(3): model(torch.randn(4, 1, 8, 8))
        model.eval(); model(torch.randn(4, 1, 8, 8))   # eval batches are not recorded
    assert n_hooks(model) == 0
    assert st.means.shape == (3, 3) and st.stds.shape == (3, 3) and st.hists.shape == (3, 3, 20)
    d = st.dead_share()
    assert ((d >= 0) & (d <= 1)).all()
    for f in (st.plot_stats, st.color_dim, st.dead_chart): f()
    with pytest.raises(ValueError, match='no module'): ActivationStats(nn.Tanh).attach(model)


def test_activation_stats_histogram_counts_all():
    "Histogram of |activations| counts every activation that lies inside [0, hmax]."
    m = nn.Sequential(nn.Identity())
    st = ActivationStats(nn.Identity, nbins=4, hmax=4.).attach(m)
    m(torch.tensor([[-0.5, 0.2, 1.5, 3.9, -3.0]]))
    st.remove()
    assert st.hists[0, 0].tolist() == [2., 1., 0., 2.]
    assert_close(st.dead_share()[0, 0].item(), 2 / 5)


def test_activation_stats_as_learner_callback():
    from course_lib.learner import Learner
    from course_lib.data import DataLoaders
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8, generator=g), torch.randint(0, 10, (64,), generator=g)
    dls = DataLoaders.from_tensors(x[:48], y[:48], x[48:], y[48:], bs=16, seed=0)
    torch.manual_seed(0)
    model = small_cnn()
    st = ActivationStats(nn.ReLU)
    learn = Learner(model, dls, lr=0.01, cbs=[st], progress=False, device='cpu')
    learn.fit(1)
    assert n_hooks(model) == 0
    assert st.means.shape == (3, 3)   # 3 ReLUs, 3 training batches (validation not recorded)


def test_general_relu():
    x = torch.randn(1000) * 3
    assert_close(GeneralRelu()(x), F.relu(x))
    assert_close(GeneralRelu(leak=0.1)(x), F.leaky_relu(x, 0.1))
    assert_close(GeneralRelu(leak=0.1, sub=0.4, maxv=6.)(x), (F.leaky_relu(x, 0.1) - 0.4).clamp(max=6.))
    x = torch.randn(10, requires_grad=True)
    GeneralRelu(leak=0.1, sub=0.4)(x).sum().backward()
    assert_close(x.grad, torch.where(x > 0, 1., 0.1))


def test_init_weights():
    torch.manual_seed(0)
    m = nn.Linear(500, 400)
    init_weights(m, leaky=0.1)
    assert_close(m.weight.std().item(), math.sqrt(2 / (1 + 0.01) / 500), eps=0.01)
    assert m.bias.abs().sum() == 0
    c = nn.Conv2d(8, 16, 3)
    init_weights(c)
    assert_close(c.weight.std().item(), math.sqrt(2 / (8 * 9)), eps=0.02)
    bn = nn.BatchNorm2d(3); w = bn.weight.clone(); init_weights(bn); assert_close(bn.weight, w)   # other modules untouched


def _out_stats(model, xb, mods):
    outs = []
    with Hooks(mods, lambda h, m, i, o: outs.append((o.mean().item(), o.std().item()))), torch.no_grad(): model(xb)
    return torch.tensor(outs)


def test_lsuv_reaches_tolerance():
    torch.manual_seed(0)
    model, xb, tol = small_cnn(), torch.randn(32, 1, 8, 8), 1e-3
    table = lsuv_init(model, xb, tol=tol)
    assert n_hooks(model) == 0 and len(table) == 4
    s = _out_stats(model, xb, find_modules(model, nn.Conv2d, nn.Linear))
    assert (s[:, 0].abs() < tol).all() and ((s[:, 1] - 1).abs() < tol).all()
    assert (table.std_before[1:] < 0.9).all()   # PyTorch's default init had shrunk them


def test_lsuv_watching_general_relu():
    torch.manual_seed(0)
    model, xb = small_cnn(act=partial(GeneralRelu, leak=0.1, sub=0.4)), torch.randn(32, 1, 8, 8)
    acts = find_modules(model, GeneralRelu)
    lsuv_init(model, xb, layers=find_modules(model, nn.Conv2d), watch=acts, tol=1e-3)
    s = _out_stats(model, xb, acts)
    assert (s[:, 0].abs() < 1e-3).all() and ((s[:, 1] - 1).abs() < 1e-3).all()


def test_lsuv_errors():
    torch.manual_seed(0)
    model, xb = small_cnn(), torch.randn(16, 1, 8, 8)
    with pytest.raises(RuntimeError, match='cannot have mean 0'):
        lsuv_init(model, xb, layers=find_modules(model, nn.Conv2d), watch=find_modules(model, nn.ReLU), max_iter=10)
    assert n_hooks(model) == 0
    with pytest.raises(RuntimeError, match='constant'):
        lsuv_init(nn.Sequential(nn.Conv2d(1, 2, 3, bias=False)), torch.zeros(4, 1, 6, 6))
    with pytest.raises(RuntimeError, match='did not run'):
        lsuv_init(model, xb, layers=[nn.Linear(3, 3)])
    with pytest.raises(ValueError, match='one per layer'):
        lsuv_init(model, xb, watch=find_modules(model, nn.ReLU))
