"The exported pieces of lesson 02b (backpropagation from scratch), checked against PyTorch's autograd in plain Python."
import math, random, sys
import matplotlib
matplotlib.use('Agg')
import matplotlib.text
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from course_lib.backprop import (numerical_grad, autograd_grads, rel_error, check_grads, Layer, Linear, ReLU, MSE,
                                 Model, Value, topo_order, draw_graph, random_expression, run_expression, EXPRESSION_OPS)


def _torch_twin(model):
    layers = []
    for layer in model.layers:
        if isinstance(layer, Linear):
            t = nn.Linear(*layer.params['w'].shape).double()
            with torch.no_grad(): t.weight.copy_(layer.params['w'].T); t.bias.copy_(layer.params['b'])
            layers.append(t)
        else: layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _model(sizes, seed):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        lin = Linear(a, b, g)
        lin.params = {k: v.double() for k, v in lin.params.items()}
        lin.params['b'] = 0.1 * torch.randn(b, generator=g, dtype=torch.float64)     # non-zero biases: a stricter test
        layers += [lin, ReLU()]
    return Model(*layers[:-1])


# ---------------------------------------------------------------- gradient-check helpers
def test_numerical_grad_matches_the_formula_and_counts_two_runs_per_number():
    calls = []
    def f(x): calls.append(1); return (x ** 3).sum()
    x = torch.tensor([[1., -2.], [0.5, 3.]])
    torch.testing.assert_close(numerical_grad(f, x), 3 * x.double() ** 2, rtol=1e-6, atol=1e-6)
    assert len(calls) == 2 * x.numel()
    assert numerical_grad(lambda t: t ** 2, torch.tensor(3.)).item() == pytest.approx(6.)


def test_autograd_grads_leaves_inputs_untouched_and_gives_zeros_for_unused_inputs():
    a, b = torch.randn(3), torch.randn(3)
    ga, gb = autograd_grads(lambda a, b: (a * 2).sum(), a, b)
    torch.testing.assert_close(ga, torch.full((3,), 2.))
    torch.testing.assert_close(gb, torch.zeros(3))
    assert not a.requires_grad and a.grad is None


def test_rel_error_and_check_grads_fail_when_they_should():
    assert rel_error(torch.zeros(3), torch.zeros(3)) == 0.
    assert rel_error([1., 2.], [1., 2.2]) == pytest.approx(0.2 / 2.2)
    with pytest.raises(ValueError, match='shape'): rel_error(torch.zeros(2, 3), torch.zeros(3, 2))
    ref = {'w': torch.ones(2, 2), 'b': torch.ones(2)}
    assert check_grads({'w': torch.ones(2, 2), 'b': torch.ones(2) + 1e-7}, ref)['b'] < 1e-6
    with pytest.raises(AssertionError, match='b'): check_grads({'w': torch.ones(2, 2), 'b': 2 * torch.ones(2)}, ref)
    with pytest.raises(AssertionError, match='expected'): check_grads({'w': torch.ones(2, 2)}, ref)
    with pytest.raises(AssertionError, match='w inf'): check_grads({'w': torch.full((2, 2), math.nan), 'b': torch.ones(2)}, ref)
    assert rel_error([1., math.inf], [1., 2.]) == math.inf


# ---------------------------------------------------------------- layers
@pytest.mark.parametrize('seed,sizes,n', [(0, [5, 7, 1], 9), (1, [3, 4, 6, 2], 1), (2, [10, 16, 16, 3], 32)])
def test_model_forward_and_backward_equal_pytorch(seed, sizes, n):
    model = _model(sizes, seed)
    twin = _torch_twin(model)
    g = torch.Generator().manual_seed(100 + seed)
    x, y = torch.randn(n, sizes[0], generator=g, dtype=torch.float64), torch.randn(n, sizes[-1], generator=g, dtype=torch.float64)
    loss_fn = MSE()
    loss = loss_fn(model(x), y)
    grad_x = model.backward(loss_fn.backward())
    xt = x.clone().requires_grad_()
    tloss = F.mse_loss(twin(xt), y)
    tloss.backward()
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-12)
    torch.testing.assert_close(grad_x, xt.grad, rtol=1e-10, atol=1e-12)
    for (name, p, gr), (tname, tp) in zip(model.named_params(), twin.named_parameters()):
        assert name.split('.')[0] == tname.split('.')[0]
        torch.testing.assert_close(gr, tp.grad.T if gr.dim() == 2 else tp.grad, rtol=1e-10, atol=1e-12)


def test_linear_backward_matches_finite_differences():
    lin = Linear(4, 3, torch.Generator().manual_seed(0))
    lin.params = {k: v.double() for k, v in lin.params.items()}
    x = torch.randn(5, 4, dtype=torch.float64)
    up = torch.randn(5, 3, dtype=torch.float64)                 # a fixed upstream gradient: loss = sum(out * up)
    lin(x); gx = lin.backward(up)
    w, b = lin.params['w'], lin.params['b']
    torch.testing.assert_close(gx, numerical_grad(lambda t: ((t @ w + b) * up).sum(), x), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(lin.grads['w'], numerical_grad(lambda t: ((x @ t + b) * up).sum(), w), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(lin.grads['b'], numerical_grad(lambda t: ((x @ w + t) * up).sum(), b), rtol=1e-6, atol=1e-8)


def test_relu_gradient_at_zero_is_zero_like_pytorch():
    x = torch.tensor([-1., 0., 2.], requires_grad=True)
    torch.relu(x).backward(torch.ones(3))
    r = ReLU(); r(x.detach())
    torch.testing.assert_close(r.backward(torch.ones(3)), x.grad)


def test_sgd_training_follows_torch_optim_sgd():
    model = _model([6, 8, 1], seed=3)
    twin = _torch_twin(model)
    opt = torch.optim.SGD(twin.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randn(40, generator=g, dtype=torch.float64)
    loss_fn, first = MSE(), None
    for _ in range(25):
        loss = loss_fn(model(x), y); model.backward(loss_fn.backward()); model.sgd_step(0.05)
        first = first if first is not None else loss.item()
        F.mse_loss(twin(x).squeeze(-1), y).backward(); opt.step(); opt.zero_grad()
    for (_, p, _), tp in zip(model.named_params(), twin.parameters()):
        torch.testing.assert_close(p, tp.detach().T if p.dim() == 2 else tp.detach(), rtol=1e-9, atol=1e-10)
    assert loss.item() < first


def test_layer_errors_say_what_to_do():
    with pytest.raises(RuntimeError, match='forward and a backward'): _model([2, 3, 1], 0).sgd_step(0.1)
    with pytest.raises(ValueError, match='match one to one'): MSE()(torch.zeros(4, 1), torch.zeros(5))
    with pytest.raises(NotImplementedError, match='forward'): Layer()(torch.zeros(2))
    assert 'Linear' in repr(_model([2, 3, 1], 0))


# ---------------------------------------------------------------- the Value engine
UNARY = {'relu': torch.relu, 'tanh': torch.tanh, 'exp': torch.exp, 'log': torch.log}

@pytest.mark.parametrize('op', sorted(UNARY))
@pytest.mark.parametrize('x0', [-1.7, 0.3, 2.2])
def test_each_unary_op_matches_pytorch(op, x0):
    if op == 'log' and x0 <= 0: x0 = -x0
    v = Value(x0)
    out = getattr(v, op)()
    out.backward()
    t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    tout = UNARY[op](t)
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-12)
    assert v.grad == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-15)


BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b, lambda a, b: a ** b,
          lambda a, b: a ** 3, lambda a, b: a ** -1.5, lambda a, b: 2.5 - a, lambda a, b: 3 / b, lambda a, b: 2 ** a,
          lambda a, b: 4 + b, lambda a, b: -a * 0.5, lambda a, b: (a * b + a) * (b - a) / (a + 2)]

@pytest.mark.parametrize('i', range(len(BINARY)))
def test_each_binary_op_and_reflected_op_matches_pytorch(i):
    f = BINARY[i]
    a, b = Value(1.3), Value(0.7)
    out = f(a, b); out.backward()
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.3, 0.7))
    tout = f(ta, tb); tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-12)
    for v, t in ((a, ta), (b, tb)):
        assert v.grad == pytest.approx(0. if t.grad is None else t.grad.item(), rel=1e-12, abs=1e-15)


def test_random_expressions_agree_with_pytorch():
    ops = set()
    for seed in range(400):
        inputs, steps = random_expression(seed, n_inputs=4, n_steps=20)
        ops |= {s[0] for s in steps}
        vs = [Value(x) for x in inputs]
        out = run_expression(steps, vs); out.backward()
        ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
        tout = run_expression(steps, ts); tout.backward()
        torch.testing.assert_close(torch.tensor(out.data, dtype=torch.float64), tout.detach(), rtol=1e-9, atol=1e-12)
        want = torch.stack([t.grad if t.grad is not None else torch.zeros((), dtype=torch.float64) for t in ts])
        torch.testing.assert_close(torch.tensor([v.grad for v in vs], dtype=torch.float64), want, rtol=1e-9, atol=1e-12)
    assert ops == set(EXPRESSION_OPS)


def test_random_expressions_are_reproducible_and_reuse_results():
    assert random_expression(7) == random_expression(7)
    assert random_expression(7) != random_expression(8)
    reused = sum(len({i for _, i, _, _ in steps}) < len(steps) for _, steps in (random_expression(s) for s in range(50)))
    assert reused > 40


def test_a_value_used_twice_gets_both_contributions():
    a = Value(3.)
    out = a * a + a                                   # d/da = 2a + 1
    out.backward()
    assert a.grad == 7.


def test_backward_starts_from_zero_each_time():
    a = Value(2.)
    out = (a * 3).tanh()
    out.backward(); first = a.grad
    out.backward()
    assert a.grad == first != 0


def test_topological_order_and_deep_graphs():
    x = v = Value(0.1)
    for _ in range(5 * sys.getrecursionlimit()): v = (v * 0.999).tanh()
    order = topo_order(v)
    pos = {n: i for i, n in enumerate(order)}
    assert all(pos[p] < pos[n] for n in order for p in n.parents)
    assert order[-1] is v and order.count(x) == 1
    v.backward()
    assert math.isfinite(x.grad) and x.grad > 0


def test_value_errors_say_what_to_do():
    with pytest.raises(ValueError, match='positive'): Value(-1.).log()
    with pytest.raises(ValueError, match='whole exponent'): Value(-2.) ** 0.5
    with pytest.raises(ZeroDivisionError): Value(1.) / Value(0.)
    with pytest.raises(TypeError, match='float'): Value(1.) + torch.tensor(2.)
    with pytest.raises(TypeError): Value(1.) + 'a'
    with pytest.raises(ValueError, match='one per parent'): Value(1., (Value(2.),), ())
    assert (Value(-2.) ** 2).data == 4.
    z = Value(0.); out = z ** 0; out.backward()                   # x ** 0 is 1 everywhere, slope 0 (as in PyTorch)
    assert (out.data, z.grad) == (1., 0.)


def test_draw_graph_draws_one_box_per_value():
    a, b = Value(0.5, label='a'), Value(-1.5, label='b')
    out = (a * b + a).tanh()
    out.backward()
    ax = draw_graph(out)
    texts = [t for t in ax.texts if type(t) is matplotlib.text.Text]          # not the arrows (Annotations)
    boxes = [t for t in texts if '\ndata ' in t.get_text()]
    assert len(boxes) == len(topo_order(out)) == 5
    n_edges = sum(len(v.parents) for v in topo_order(out))
    assert len(texts) - len(boxes) == n_edges == len(ax.texts) - len(texts)   # one label and one arrow per edge
