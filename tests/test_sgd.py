"The exported pieces of lesson 02 (SGD from scratch), checked against PyTorch and scikit-learn in plain Python."
import copy
import matplotlib
matplotlib.use('Agg')
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from course_lib.sgd import (quadratic, mse, QuadraticFit, QuadraticSliders, linear_init, mnist_loss,
                            batch_accuracy, BasicOptim, train_epoch, validate_epoch)

def _data(n=96, n_in=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g)
    y = (x[:, 0] + 0.5 * torch.randn(n, generator=g) > 0).float()
    return x, y

def _net(n_in=10, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Linear(8, 1))

def test_basic_optim_equals_torch_sgd_over_20_steps():
    x, y = _data()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 96, 16)] * 4       # 24 steps
    ours, ref = _net(), _net()
    opt_ours, opt_ref = BasicOptim(ours.parameters(), lr=0.3), torch.optim.SGD(ref.parameters(), lr=0.3)
    for step, (xb, yb) in enumerate(batches[:20]):
        for model, opt in ((ours, opt_ours), (ref, opt_ref)):
            mnist_loss(model(xb), yb).backward(); opt.step(); opt.zero_grad()
        for p, q in zip(ours.parameters(), ref.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=f'differs after step {step + 1}')
    assert any((p != q0).any() for p, q0 in zip(ours.parameters(), _net().parameters())), 'training changed nothing'

def test_train_epoch_gives_the_same_weights_with_either_optimizer():
    x, y = _data()
    batches = [(x[i:i + 20], y[i:i + 20]) for i in range(0, 96, 20)]          # last batch smaller
    ours, ref = _net(), _net()
    l1 = train_epoch(ours, batches, BasicOptim(ours.parameters(), 0.5))
    l2 = train_epoch(ref, batches, torch.optim.SGD(ref.parameters(), 0.5))
    assert l1 == pytest.approx(l2, rel=1e-6)
    for p, q in zip(ours.parameters(), ref.parameters()): torch.testing.assert_close(p, q)
    assert all(p.grad is None for p in ours.parameters()), 'gradients must be cleared after each step'

def test_training_lowers_the_loss():
    x, y = _data()
    model = _net()
    opt = BasicOptim(model.parameters(), 1.0)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 96, 16)]
    first = train_epoch(model, batches, opt)
    for _ in range(10): last = train_epoch(model, batches, opt)
    assert last < first

def test_mnist_loss_is_l1_between_sigmoid_and_targets():
    g = torch.Generator().manual_seed(1)
    preds, targs = torch.randn(50, 1, generator=g) * 3, (torch.rand(50, generator=g) > 0.5).float()
    torch.testing.assert_close(mnist_loss(preds, targs), F.l1_loss(torch.sigmoid(preds).squeeze(1), targs))
    torch.testing.assert_close(mnist_loss(preds.squeeze(1), targs), mnist_loss(preds, targs))
    assert mnist_loss(torch.tensor([20., -20.]), torch.tensor([1., 0.])) < 1e-6

def test_batch_accuracy_matches_sklearn():
    from sklearn.metrics import accuracy_score
    g = torch.Generator().manual_seed(2)
    preds, targs = torch.randn(64, 1, generator=g), (torch.rand(64, generator=g) > 0.5).float()
    want = accuracy_score(targs.numpy(), (torch.sigmoid(preds).squeeze(1) > 0.5).float().numpy())
    assert batch_accuracy(preds, targs).item() == pytest.approx(want)

def test_validate_epoch_weights_batches_by_size():
    x, y = _data(n=50)
    model = _net()
    batches = [(x[:48], y[:48]), (x[48:], y[48:])]                          # 48 + 2: unequal batches
    with torch.no_grad(): whole = batch_accuracy(model(x), y).item()
    assert validate_epoch(model, batches) == pytest.approx(whole)
    assert validate_epoch(model, batches, metric=mnist_loss) == pytest.approx(mnist_loss(model(x), y).item())

def test_linear_init():
    w, b = linear_init(64, 3, generator=torch.Generator().manual_seed(0))
    assert w.shape == (64, 3) and b.shape == (3,) and w.requires_grad and b.requires_grad
    assert (b == 0).all() and 0.08 < w.std().item() < 0.17          # about 1/sqrt(64) = 0.125
    w2, _ = linear_init(64, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(w, w2)
    w3, _ = linear_init(64, 3, std=2.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(w3, w * 2.0 * 8)

def test_basic_optim_refuses_no_parameters_and_skips_missing_grads():
    with pytest.raises(ValueError, match='no parameters'): BasicOptim([], 0.1)
    p = torch.ones(2, requires_grad=True)
    BasicOptim([p], 0.1).step()                                          # no grad yet: unchanged
    torch.testing.assert_close(p, torch.ones(2, requires_grad=True))

def test_quadratic_and_mse():
    x = torch.linspace(-1, 1, 7)
    torch.testing.assert_close(quadratic(x, 2., -1., 0.5), 2 * x**2 - x + 0.5)
    torch.testing.assert_close(mse(x, x.flip(0)), F.mse_loss(x, x.flip(0)))

def test_quadratic_sliders_headless():
    x = torch.linspace(-1, 1, 20)
    y = quadratic(x, -3., 1., 2.)
    fit = QuadraticFit(x, y)
    view = QuadraticSliders(fit)
    before, n_draws = fit.loss, len(fit.history)
    for name, v in zip('abc', (-3., 1., 2.)): view.sliders[name].value = v   # what dragging does
    assert fit.params == (-3., 1., 2.) and fit.loss < 1e-10 < before
    assert f'{fit.loss:.3f}' in view.label.value
    torch.testing.assert_close(torch.as_tensor(fit.line.get_ydata()), quadratic(fit.xs, -3., 1., 2.))
    assert len(fit.history) == n_draws + 3                                # one redraw per move

def test_clear_errors_for_bad_input():
    with pytest.raises(ValueError, match='one prediction per target'): mnist_loss(torch.zeros(8, 2), torch.zeros(8))
    with pytest.raises(ValueError, match='one prediction per target'): batch_accuracy(torch.zeros(3), torch.zeros(8))
    with pytest.raises(ValueError, match='matching x and y'): QuadraticFit(torch.zeros(5), torch.zeros(4))
