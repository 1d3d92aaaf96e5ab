"Convolutions, ResNet blocks, interpretation helpers, freezing and checkpoints of `course_lib.cnn`, in plain Python."
import matplotlib
matplotlib.use('Agg')
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from course_lib.cnn import (conv_out_size, conv_as_matrix, conv_block, simple_cnn, ResBlock, resnet_small, create_cnn,
                            num_features, confusion_matrix, most_confused, top_losses, Hook, class_activation_map,
                            body_head_splitter, freeze_body, unfreeze, save_model, load_model, predict_image)


@pytest.mark.parametrize('h,w,ks,stride,padding', [(5, 5, 3, 1, 0), (6, 7, 3, 2, 1), (8, 8, 5, 1, 2), (9, 6, 1, 3, 0),
                                                   (7, 7, 3, 3, 2), (4, 9, 5, 2, 2)])
def test_conv_as_matrix_equals_conv2d(h, w, ks, stride, padding):
    g = torch.Generator().manual_seed(h*100 + w)
    x, k = torch.randn(h, w, generator=g), torch.randn(ks, ks, generator=g)
    want = F.conv2d(x[None, None], k[None, None], stride=stride, padding=padding)[0, 0]
    got = conv_as_matrix(k, h, w, stride, padding) @ x.flatten()
    assert torch.allclose(got, want.flatten(), atol=1e-5)


def test_conv_matrix_is_sparse_and_tied():
    M = conv_as_matrix(torch.arange(1., 10.).view(3, 3), 6, 6)
    assert M.shape == (16, 36)
    assert (M != 0).sum().item() == 16*9                   # 9 nonzeros per output pixel, the rest zeros
    for v in range(1, 10): assert ((M == v).sum(1) == 1).all()   # every weight exactly once per row


def test_output_size_formula_matches_conv2d():
    for n in (1, 4, 7, 10, 28):
        for ks in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for p in (0, 1, 2):
                    if ks > n + 2*p: continue
                    out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, ks, ks), stride=s, padding=p)
                    assert out.shape[-1] == conv_out_size(n, ks, s, p), (n, ks, s, p)


def test_conv_block_has_no_bias_and_halves_the_grid():
    b = conv_block(3, 8)
    assert b[0].bias is None and isinstance(b[1], nn.BatchNorm2d) and isinstance(b[2], nn.ReLU)
    assert b(torch.randn(2, 3, 9, 9)).shape == (2, 8, 5, 5)
    assert len(conv_block(3, 8, act=False)) == 2
    assert simple_cnn(28)(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize('ni,nf,stride,size,want', [(16, 16, 1, 8, 8), (16, 32, 1, 8, 8), (16, 32, 2, 8, 4),
                                                    (16, 16, 2, 7, 4), (8, 32, 2, 5, 3)])
def test_resblock_shapes(ni, nf, stride, size, want):
    blk = ResBlock(ni, nf, stride)
    assert blk(torch.randn(2, ni, size, size)).shape == (2, nf, want, want)
    assert isinstance(blk.idconv, nn.Identity) == (ni == nf)
    assert isinstance(blk.pool, nn.Identity) == (stride == 1)


def test_resblock_starts_as_identity():
    x = torch.randn(3, 16, 6, 6)
    assert torch.allclose(ResBlock(16, 16)(x), F.relu(x))


def test_resnet_small_body_head_and_any_size():
    m = resnet_small(n_in=3, n_out=5, nfs=(8, 16, 32, 64))
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert m(torch.randn(2, 3, 20, 44)).shape == (2, 5)
    assert num_features(m.body) == 64
    assert create_cnn(m.body, 7)(torch.randn(1, 3, 32, 32)).shape == (1, 7)


def test_confusion_matrix_matches_sklearn():
    from sklearn.metrics import confusion_matrix as sk_cm
    g = torch.Generator().manual_seed(0)
    t, p = torch.randint(0, 6, (500,), generator=g), torch.randint(0, 6, (500,), generator=g)
    cm = confusion_matrix(p, t, 6)
    assert (cm.numpy() == sk_cm(t.numpy(), p.numpy(), labels=range(6))).all()
    assert confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 0]), 3).shape == (3, 3)   # absent classes kept


def test_most_confused():
    cm = torch.tensor([[5, 2, 0], [7, 3, 1], [0, 2, 9]])
    assert most_confused(cm, ['a', 'b', 'c']) == [('b', 'a', 7), ('a', 'b', 2), ('c', 'b', 2), ('b', 'c', 1)]
    assert most_confused(cm, ['a', 'b', 'c'], min_val=3) == [('b', 'a', 7)]


def test_top_losses_equal_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits, targs = torch.randn(50, 4, generator=g)*3, torch.randint(0, 4, (50,), generator=g)
    ce = F.cross_entropy(logits, targs, reduction='none')
    losses, idx = top_losses(F.softmax(logits, 1), targs, k=5)
    assert torch.allclose(losses, ce.topk(5).values, atol=1e-4)
    assert torch.allclose(ce[idx], losses, atol=1e-4)


def test_hook_and_cam():
    m = resnet_small().eval()
    x = torch.randn(4, 1, 28, 28)
    with Hook(m.body) as h:
        with torch.no_grad(): logits = m(x)
        assert h.stored.shape == (4, 32, 7, 7)
    h.stored = None
    m(x)
    assert h.stored is None                                 # removed on leaving the block
    cams, cls = class_activation_map(m, x)
    assert torch.equal(cls, logits.argmax(1))
    assert torch.allclose(cams.mean((1, 2)) + m.head[-1].bias[cls], logits.gather(1, cls[:, None])[:, 0], atol=1e-5)
    cams3, cls3 = class_activation_map(m, x, cls=3)
    assert (cls3 == 3).all() and cams3.shape == (4, 7, 7)


def test_freeze_keeps_batchnorm_trainable_and_unfreeze_restores():
    m = resnet_small()
    freeze_body(m)
    for mod in m.body.modules():
        for p in mod.parameters(recurse=False):
            assert p.requires_grad == isinstance(mod, nn.BatchNorm2d)
    assert all(p.requires_grad for p in m.head.parameters())
    freeze_body(m, train_bn=False)
    assert not any(p.requires_grad for p in m.body.parameters())
    unfreeze(m)
    assert all(p.requires_grad for p in m.parameters())
    assert [len(g) for g in body_head_splitter(m)] == [len(list(m.body.parameters())), len(list(m.head.parameters()))]
    with pytest.raises(AttributeError, match='body'): body_head_splitter(nn.Linear(2, 2))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    m = resnet_small()
    with torch.no_grad():
        for p in m.parameters(): p.add_(torch.randn_like(p))
    path = save_model(m, tmp_path/'models'/'m.pth')
    assert path.is_file() and [f.name for f in path.parent.iterdir()] == ['m.pth']   # no temporary file left
    sd = torch.load(path, weights_only=True)
    assert set(sd) == set(m.state_dict())
    fresh = load_model(resnet_small(), path)
    x = torch.randn(2, 1, 28, 28)
    m.eval(); fresh.eval()
    assert torch.allclose(fresh(x), m(x))
    assert predict_image(fresh, x[0], list('0123456789'))[0] == str(int(m(x[:1]).argmax()))
    with pytest.raises(FileNotFoundError, match='save_model'): load_model(resnet_small(), tmp_path/'missing.pth')


def test_save_overwrites_atomically(tmp_path):
    a, b = resnet_small(), resnet_small()
    path = save_model(a, tmp_path/'m.pth')
    save_model(b, path)
    got = torch.load(path, weights_only=True)
    assert all(torch.equal(got[k], v) for k, v in b.state_dict().items())


def test_bad_inputs_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match='2-D kernel'): conv_as_matrix(torch.zeros(1, 3, 3), 5, 5)
    with pytest.raises(ValueError, match='does not fit'): conv_as_matrix(torch.zeros(5, 5), 3, 3)
    with pytest.raises(ValueError, match='0..2'): confusion_matrix(torch.tensor([0, 3]), torch.tensor([1, 2]), 3)
    with pytest.raises(ValueError, match='targets'): confusion_matrix(torch.tensor([0, 1]), torch.tensor([1]), 3)
    with pytest.raises(ValueError, match=r'\[N, classes\]'): top_losses(torch.rand(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(AttributeError, match='body'): class_activation_map(simple_cnn(8), torch.zeros(1, 1, 8, 8))
    path = save_model(resnet_small(), tmp_path/'m.pth')
    with pytest.raises(RuntimeError, match='same architecture'): load_model(resnet_small(nfs=(8, 16)), path)
