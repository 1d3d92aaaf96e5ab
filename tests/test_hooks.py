"Hooks and class activation maps of `course_lib.hooks`, in plain Python."
import matplotlib
matplotlib.use('Agg')
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from course_lib.cnn import resnet_small, simple_cnn
from course_lib.hooks import Hook, Hooks, find_modules, keep_output, class_activation_map, show_cam


def n_hooks(model): return sum(len(m._forward_hooks) for m in model.modules())


def test_hook_keeps_output_and_is_removed():
    m = resnet_small().eval()
    x = torch.randn(4, 1, 28, 28)
    with Hook(m.body) as h:
        with torch.no_grad(): m(x)
        assert h.stored.shape == (4, 32, 7, 7) and not h.stored.requires_grad
        assert n_hooks(m) == 1
    assert n_hooks(m) == 0
    h.stored = None
    m(x)
    assert h.stored is None                                 # removed on leaving the block


def test_hook_default_detaches_even_with_grad():
    lin = nn.Linear(3, 2)
    with Hook(lin) as h: lin(torch.randn(4, 3))
    assert not h.stored.requires_grad and h.stored.grad_fn is None


def test_custom_hook_function_and_hooks_removed_on_error():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    def count(hook, mod, inp, outp): hook.n = getattr(hook, 'n', 0) + 1
    with pytest.raises(RuntimeError, match='boom'):
        with Hooks(find_modules(m, nn.Linear), count) as hs:
            assert len(hs) == 2 and n_hooks(m) == 2
            m(torch.randn(1, 4)); m(torch.randn(1, 4))
            raise RuntimeError('boom')
    assert n_hooks(m) == 0 and [h.n for h in hs] == [2, 2]


def test_find_modules_in_order_including_self():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    assert find_modules(m, nn.Linear) == [m[0], m[1][1]]
    assert find_modules(m, nn.Sequential) == [m, m[1]]
    assert find_modules(m, nn.Conv2d) == []


def test_cam_mean_plus_bias_is_the_score():
    torch.manual_seed(0)
    m = resnet_small()
    with torch.no_grad():
        for p in m.parameters(): p.add_(torch.randn_like(p) * 0.1)
    m.train()
    x = torch.randn(4, 1, 28, 28)
    cams, cls = class_activation_map(m, x)
    assert m.training                                        # mode restored
    m.eval()
    with torch.no_grad(): logits = m(x)
    assert torch.equal(cls, logits.argmax(1))
    assert torch.allclose(cams.mean((1, 2)) + m.head[-1].bias.detach()[cls], logits.gather(1, cls[:, None])[:, 0], atol=1e-5)
    cams3, cls3 = class_activation_map(m, x, cls=3)
    assert (cls3 == 3).all() and cams3.shape == (4, 7, 7)
    assert torch.allclose(cams3.mean((1, 2)) + m.head[-1].bias.detach()[3], logits[:, 3], atol=1e-5)
    assert n_hooks(m) == 0
    assert cams.device.type == 'cpu' and cls.device.type == 'cpu'


def test_cam_on_the_models_device():
    "Inputs go to the model's device; results come back on the CPU (runs on CUDA where there is one)."
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    m = resnet_small().to(dev)
    cams, cls = class_activation_map(m, torch.randn(2, 1, 16, 16))
    assert cams.shape == (2, 4, 4) and cams.device.type == 'cpu' and cls.device.type == 'cpu'
    show_cam(torch.rand(1, 16, 16), cams[0])


def test_cam_needs_body_and_linear_head():
    with pytest.raises(AttributeError, match='body'): class_activation_map(simple_cnn(8), torch.zeros(1, 1, 8, 8))
