"Fast checks of course_lib.gans: the ring measure, the GAN training callback, spectral norm, the Frechet distance, crappify, U-Net, feature loss."
import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist
import torch
from torch import nn
import torch.nn.functional as F
from fastcore.test import test_close as assert_close

from course_lib.overfitting import mlp
from course_lib.gans import (ring_quality, sampled_dls, GAN, GANTrainer, gan_learner, gradient_penalty, GANSnapshots,
                             power_iteration, SpectralNorm, sn_linear, dcgan_generator, dcgan_critic, frechet_distance,
                             classifier_features, crappify, upsample, UNet, FeatureLoss)

CENTRES = torch.tensor([[2 * np.cos(a), 2 * np.sin(a)] for a in 2 * np.pi * np.arange(8) / 8], dtype=torch.float32)


def ring_points(n, modes=range(8), sd=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.tensor(list(modes))[torch.randint(0, len(modes), (n,), generator=g)]
    return CENTRES[m] + sd * torch.randn(n, 2, generator=g), m


@pytest.mark.parametrize('case', ['real', 'three_modes', 'spread', 'cloud'])
def test_ring_quality_against_scipy(case):
    x = {'real': lambda: ring_points(3000)[0], 'three_modes': lambda: ring_points(3000, [0, 3, 5])[0],
         'spread': lambda: ring_points(3000, sd=0.1)[0],
         'cloud': lambda: 2 * torch.randn(3000, 2, generator=torch.Generator().manual_seed(1))}[case]()
    q = ring_quality(x, CENTRES)
    d = cdist(x.double().numpy(), CENTRES.double().numpy())
    good, near = d.min(1) < 0.15, d.argmin(1)
    counts = np.bincount(near[good], minlength=8)
    assert q['counts'] == counts.tolist()
    assert q['modes'] == int((counts >= 0.2 * len(x) / 8).sum())
    assert_close(q['quality'], good.mean(), eps=1e-6)
    if case == 'real': assert q['modes'] == 8 and q['quality'] > 0.97
    if case == 'three_modes': assert q['modes'] == 3


def test_ring_quality_min_share():
    # mode 0 gets 10 of 800 samples: covered with min_share=0.1 (needs 10), not with the default 0.2 (needs 20)
    x = torch.cat([ring_points(790, range(1, 8))[0], CENTRES[:1].repeat(10, 1)])
    assert ring_quality(x, CENTRES)['modes'] == 7
    assert ring_quality(x, CENTRES, min_share=0.1)['modes'] == 8


def test_sampled_dls():
    x, m = ring_points(100)
    dls = sampled_dls(x, m, n_batches=7, bs=16, seed=3)
    batches = list(dls.train)
    assert len(batches) == 7 and all(len(b[0]) == 16 for b in batches) and dls.valid is None
    again = list(sampled_dls(x, m, n_batches=7, bs=16, seed=3).train)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))


def params(m): return [p.detach().clone() for p in m.parameters()]
def same(a, b): return all(torch.equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize('n_crit', [1, 3])
def test_gan_trainer_steps_one_player_at_a_time(n_crit):
    torch.manual_seed(0)
    x, m = ring_points(256)
    learn = gan_learner(mlp(2, 16, 2), mlp(2, 16, 1), 2, sampled_dls(x, m, 1, 32), lr=1e-2, n_crit=n_crit, progress=False)
    G, C = learn.model.generator, learn.model.critic
    for k in range(2 * (n_crit + 1)):
        g0, c0 = params(G), params(C)
        learn.fit(1)
        gen_turn = k % (n_crit + 1) == n_crit
        assert same(g0, params(G)) != gen_turn, f'batch {k}: the generator should move only on its turn'
        assert same(c0, params(C)) == gen_turn, f'batch {k}: the critic should move only on its turn'


def test_gan_learner_fits_and_records():
    torch.manual_seed(0)
    x, m = ring_points(512)
    snaps = GANSnapshots(every=5, n=50)
    learn = gan_learner(mlp(2, 16, 2), mlp(2, 16, 1), 2, sampled_dls(x, m, 20, 64), cbs=[snaps], progress=False)
    learn.fit(1)
    tr = learn.cb(GANTrainer)
    assert len(tr.crit_losses) == 10 and len(tr.gen_losses) == 10
    assert [k for k, _ in snaps.snaps] == [0, 5, 10, 15, 20] and snaps.snaps[0][1].shape == (50, 2)
    assert torch.equal(learn.model.sample(10, seed=1), learn.model.sample(10, seed=1))
    with pytest.raises(ValueError, match='loss should be'): GANTrainer(loss='hinge')


def test_wgan_clipping_keeps_critic_weights_in_range():
    torch.manual_seed(0)
    x, m = ring_points(512)
    learn = gan_learner(mlp(2, 16, 2), mlp(2, 16, 1), 2, sampled_dls(x, m, 12, 64), loss='wgan', clip=0.05, n_crit=2,
                        opt_func=torch.optim.RMSprop, lr=1e-2, progress=False)
    learn.fit(1)
    assert max(p.abs().max().item() for p in learn.model.critic.parameters()) <= 0.05 + 1e-7
    assert max(p.abs().max().item() for p in learn.model.generator.parameters()) > 0.05   # only the critic is clipped


def test_wgan_gp_runs():
    torch.manual_seed(0)
    x, m = ring_points(512)
    learn = gan_learner(mlp(2, 16, 2), mlp(2, 16, 1), 2, sampled_dls(x, m, 6, 64), loss='wgan-gp', n_crit=2, progress=False)
    learn.fit(1)
    assert all(np.isfinite(learn.cb(GANTrainer).crit_losses))


@pytest.mark.parametrize('norm', [1., 2., 0.5])
def test_gradient_penalty_of_a_linear_critic(norm):
    w = F.normalize(torch.randn(5), dim=0) * norm
    critic = lambda x: x @ w                       # gradient w everywhere: penalty (|w| - 1)^2
    real, fake = torch.randn(16, 5), torch.randn(16, 5)
    assert_close(gradient_penalty(critic, real, fake).item(), (norm - 1) ** 2, eps=1e-5)


def test_power_iteration_converges_from_below():
    W = torch.randn(40, 25, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = torch.linalg.matrix_norm(W, ord=2)
    s, u, v = power_iteration(W, n_iter=300)
    assert_close(s, exact, eps=1e-8)
    assert_close(u.norm(), 1., eps=1e-10); assert_close(v.norm(), 1., eps=1e-10)
    assert power_iteration(W, v=v.clone() * 0 + 1 / 5, n_iter=1)[0] <= exact + 1e-10


@pytest.mark.parametrize('make,shape', [(lambda: nn.Linear(12, 7), (5, 12)), (lambda: nn.Conv2d(2, 6, 3, padding=1), (2, 2, 6, 6))])
def test_spectral_norm_matches_torch(make, shape):
    torch.manual_seed(0)
    ours, theirs = SpectralNorm(make()), make()
    theirs.load_state_dict(ours.layer.state_dict())
    theirs = torch.nn.utils.parametrizations.spectral_norm(theirs)
    pm = theirs.parametrizations.weight[0]
    pm._u.copy_(ours.u); pm._v.copy_(ours.v)
    for training in (True, True, False, True):
        ours.train(training); theirs.train(training)
        u0 = ours.u.clone()
        x = torch.randn(shape)
        a, b = ours(x), theirs(x)
        assert_close(a, b, eps=1e-5)
        a.sum().backward(); b.sum().backward()
        ga, gb = ours.layer.weight.grad, theirs.parametrizations.weight.original.grad
        assert_close(ga, gb, eps=1e-5 * gb.abs().max().item())
        ours.zero_grad(); theirs.zero_grad()
        assert torch.equal(u0, ours.u) != training      # eval passes leave the vectors alone
    sn = SpectralNorm(nn.Linear(30, 20), n_init=200)
    assert_close(torch.linalg.matrix_norm((sn.layer.weight / sn.sigma()).detach(), ord=2), 1., eps=1e-3)


def test_spectral_norm_twice_in_one_graph():
    "Real and fake through the same critic, one backward: the in-place power iteration must not break autograd."
    c = nn.Sequential(sn_linear(2, 8), nn.ReLU(), sn_linear(8, 1))
    (c(torch.randn(4, 2)).mean() - c(torch.randn(4, 2)).mean()).backward()
    assert c[0].layer.weight.grad is not None


def test_dcgan_shapes_and_layers():
    G, C = dcgan_generator(16, 8), dcgan_critic(8)
    z = torch.randn(3, 16, 1, 1)
    out = G(z)
    assert out.shape == (3, 1, 28, 28) and out.min() >= -1 and out.max() <= 1
    assert C(out).shape == (3, 1)
    for m in (G, C):
        assert not any(isinstance(l, (nn.Linear, nn.MaxPool2d, nn.AvgPool2d)) for l in m.modules())
        assert any(isinstance(l, nn.BatchNorm2d) for l in m.modules())
    gan = GAN(G, C, 16)
    assert gan.noise(4).shape == (4, 16, 1, 1) and gan.sample(5).shape == (5, 1, 28, 28)


def fd_scipy(f1, f2):
    m1, m2, s1, s2 = f1.mean(0), f2.mean(0), np.atleast_2d(np.cov(f1, rowvar=False)), np.atleast_2d(np.cov(f2, rowvar=False))
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


@pytest.mark.parametrize('d,n', [(1, 50), (4, 200), (16, 300)])
def test_frechet_distance_against_scipy(d, n):
    g = np.random.default_rng(d)
    f1 = g.normal(size=(n, d)) @ g.normal(size=(d, d))
    f2 = g.normal(size=(n, d)) @ g.normal(size=(d, d)) + 0.5
    assert_close(frechet_distance(f1, f2), fd_scipy(f1, f2), eps=1e-6 * max(1, fd_scipy(f1, f2)))
    assert abs(frechet_distance(f1, f1)) < 1e-6
    assert_close(frechet_distance(f1, f1 + 2.), 4. * d, eps=1e-6 * d)    # a shift moves only the mean term


def test_classifier_features():
    from course_lib.cnn import resnet_small
    m = resnet_small(1, 10, nfs=(4, 8))
    m.train()
    f = classifier_features(m, torch.rand(7, 1, 28, 28), bs=3)
    assert f.shape == (7, 8) and m.training


def test_crappify():
    x = torch.rand(4, 1, 28, 28)
    y = crappify(x, seed=0)
    assert y.shape == x.shape and y.dtype == torch.float32 and 0 <= y.min() and y.max() <= 1
    assert torch.equal(y, crappify(x, seed=0)) and not torch.equal(y, crappify(x, seed=1))
    assert F.mse_loss(y, x) > 1e-3


def test_upsample_checkerboard():
    ones = torch.ones(1, 1, 6, 6)
    t, r = upsample(1, 1, 'transpose'), upsample(1, 1, 'resize')
    with torch.no_grad():
        for m in (t, r[1]): m.weight.fill_(1.); m.bias.zero_()
        yt, yr = t(ones)[0, 0, 1:-1, 1:-1], r(ones)[0, 0, 1:-1, 1:-1]
    assert yt.shape == yr.shape == (10, 10)
    assert set(yt.unique().tolist()) == {1., 2., 4.} and yr.unique().tolist() == [9.]
    with pytest.raises(ValueError, match='transpose'): upsample(1, 1, 'bilinear')


@pytest.mark.parametrize('up', ['transpose', 'resize'])
def test_unet_shape(up):
    u = UNet(4, up)
    x = torch.rand(2, 1, 28, 28)
    assert u(x).shape == x.shape


def test_feature_loss():
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
    fl = FeatureLoss(net, w_feat=2., w_pix=0.5)
    a, b = torch.rand(2, 1, 8, 8, requires_grad=True), torch.rand(2, 1, 8, 8)
    assert fl(b, b).item() == 0
    loss = fl(a, b)
    assert_close(loss, 0.5 * F.mse_loss(a, b) + 2 * F.mse_loss(net(a), net(b)), eps=1e-6)
    loss.backward()
    assert a.grad is not None and all(p.grad is None for p in net.parameters())


def test_frechet_distance_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r'\(N, d\)'): frechet_distance(torch.randn(10), torch.randn(10))
    with pytest.raises(ValueError, match=r'\(N, d\)'): frechet_distance(torch.randn(10, 3), torch.randn(10, 4))
