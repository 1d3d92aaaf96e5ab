"Convolutions, the conv block, ResNet blocks and `resnet_small` of `course_lib.cnn`, in plain Python."
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from course_lib.cnn import (conv_out_size, conv_as_matrix, conv_block, simple_cnn, ResBlock, resnet_small, create_cnn,
                            num_features, cnn_head)


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


def test_conv_block_norm_and_act_choices():
    "`norm=None` keeps the conv bias and adds no norm layer; `act` can be any activation class."
    b = conv_block(3, 8, stride=1, act=nn.LeakyReLU, norm=None)
    assert [type(l) for l in b] == [nn.Conv2d, nn.LeakyReLU] and b[0].bias is not None
    assert [type(l) for l in conv_block(3, 8, norm=nn.InstanceNorm2d)] == [nn.Conv2d, nn.InstanceNorm2d, nn.ReLU]
    assert conv_block(3, 8, norm=nn.InstanceNorm2d)[0].bias is None
    assert [type(l) for l in conv_block(3, 8, act=None)] == [nn.Conv2d, nn.BatchNorm2d]
    assert conv_block(3, 8, ks=5, stride=1)(torch.randn(1, 3, 9, 9)).shape == (1, 8, 9, 9)   # padding ks//2


def test_cnn_head_is_global_average_pooling_then_linear():
    head, x = cnn_head(6, 3), torch.randn(2, 6, 5, 7)
    assert torch.allclose(head(x), head[-1](x.mean((2, 3))), atol=1e-6)


def test_num_features_keeps_training_mode():
    body = resnet_small(n_in=3).body.train()
    assert num_features(body) == 32 and body.training
    assert num_features(nn.Sequential(nn.Conv2d(3, 5, 1))) == 5
