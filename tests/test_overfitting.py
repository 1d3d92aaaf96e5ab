"Label noise, batch augmentation, mixup, label smoothing, dropout, TTA and progressive resizing of `course_lib.overfitting`."
from types import SimpleNamespace

import pytest
import torch
from torch import nn
import torch.nn.functional as F
import torchvision.transforms as T1
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from course_lib.data import DataLoaders
from course_lib.learner import Learner, MetricsCB, Callback, accuracy
from course_lib.overfitting import (plant_label_noise, MemorisationCB, mlp, flip_batch, crop_boxes, resized_crop_batch,
                                    affine_batch, erase_batch, erase_boxes, RandomResizedCrop, RandomFlip, RandomAffine,
                                    RandomErasing, BatchAugCB, MixUp, Dropout, label_smoothing_ce, LabelSmoothingCE, tta,
                                    ProgressiveResizeCB)


def _batch(n=5, c=3, h=14, w=11, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('pct', [0., 0.1, 0.4, 1.])
def test_label_noise_changes_exactly_pct_to_other_classes(pct):
    y = torch.arange(500) % 7
    noisy, flipped = plant_label_noise(y, pct, 7, seed=3)
    assert int(flipped.sum()) == round(pct*500)
    assert torch.equal(noisy != y, flipped)
    assert ((noisy >= 0) & (noisy < 7)).all()
    assert torch.equal(plant_label_noise(y, pct, 7, seed=3)[0], noisy)


def test_label_noise_bad_input():
    with pytest.raises(ValueError, match='between 0 and 1'): plant_label_noise(torch.zeros(5, dtype=torch.long), -0.1)
    with pytest.raises(ValueError, match='two classes'): plant_label_noise(torch.zeros(5, dtype=torch.long), 0.5)


def test_flip_matches_torchvision():
    x, flip = _batch(), torch.tensor([True, False, True, False, True])
    out = flip_batch(x, flip)
    for k in range(5): assert torch.equal(out[k], TF.horizontal_flip(x[k]) if flip[k] else x[k])


@pytest.mark.parametrize('size', [(9, 7), (14, 11), (30, 20)])
def test_resized_crop_matches_torchvision(size):
    x = _batch()
    boxes = crop_boxes(5, 14, 11, scale=(0.08, 1.), g=torch.Generator().manual_seed(1))
    out = resized_crop_batch(x, boxes, size)
    for k, (i, j, h, w) in enumerate(boxes.tolist()):
        want = TF.resized_crop(x[k], i, j, h, w, list(size), antialias=False)
        assert torch.allclose(out[k], want, atol=1e-5), (k, boxes[k])


def test_crop_boxes_inside_the_image_and_fallback_like_torchvision():
    g = torch.Generator().manual_seed(0)
    b = crop_boxes(200, 20, 30, scale=(0.1, 1.), g=g)
    assert (b[:, 2] > 0).all() and (b[:, 3] > 0).all()
    assert (b[:, 0] + b[:, 2] <= 20).all() and (b[:, 1] + b[:, 3] <= 30).all() and (b[:, :2] >= 0).all()
    for h, w in [(20, 30), (30, 20), (20, 20), (10, 40)]:      # an impossible scale: always the central fallback
        want = T1.RandomResizedCrop.get_params(torch.zeros(1, h, w), scale=(2., 3.), ratio=(3/4, 4/3))
        assert crop_boxes(3, h, w, scale=(2., 3.), g=g).tolist() == [list(want)]*3


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_affine_matches_torchvision(seed):
    g = torch.Generator().manual_seed(seed)
    x = _batch(seed=seed)
    angle, shift = (torch.rand(5, generator=g) - 0.5)*90, (torch.rand(5, 2, generator=g) - 0.5)*6
    zoom, shear = 0.8 + 0.4*torch.rand(5, generator=g), (torch.rand(5, 2, generator=g) - 0.5)*20
    out = affine_batch(x, angle, shift, zoom, shear, pad_mode='zeros')
    for k in range(5):
        want = TF.affine(x[k], angle=angle[k].item(), translate=shift[k].tolist(), scale=zoom[k].item(),
                         shear=shear[k].tolist(), interpolation=T.InterpolationMode.BILINEAR)
        assert torch.allclose(out[k], want, atol=1e-5)


def test_affine_reflection_fills_the_corners():
    x = _batch() + 0.1
    out = affine_batch(x, torch.full((5,), 45.), torch.zeros(5, 2), torch.ones(5), torch.zeros(5, 2), 'reflection')
    assert (out > 0).all()
    ident = affine_batch(x, torch.zeros(5), torch.zeros(5, 2), torch.ones(5), torch.zeros(5, 2))
    assert torch.allclose(ident, x, atol=1e-5)


def test_erase_matches_torchvision_and_boxes_fit():
    g = torch.Generator().manual_seed(4)
    x = _batch()
    boxes = erase_boxes(5, 14, 11, g=g)
    v = torch.randn(x.shape, generator=g)
    out = erase_batch(x, boxes, v)
    for k, (i, j, h, w) in enumerate(boxes.tolist()):
        want = TF.erase(x[k], i, j, h, w, v[k][:, i:i+h, j:j+w]) if h else x[k]
        assert torch.equal(out[k], want)
    b = erase_boxes(300, 14, 11, g=g)
    assert (b[:, 0] + b[:, 2] <= 14).all() and (b[:, 1] + b[:, 3] <= 11).all()


def test_random_transforms_keep_shape_and_are_seeded():
    x = _batch()
    for t in (RandomResizedCrop((14, 11)), RandomFlip(), RandomAffine(), RandomErasing(p=1.)):
        a, b = t(x, torch.Generator().manual_seed(0)), t(x, torch.Generator().manual_seed(0))
        assert a.shape == x.shape and torch.equal(a, b), type(t).__name__
    assert torch.equal(RandomErasing(p=0.)(x, torch.Generator().manual_seed(0)), x)


def _dls(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)
    return x, y, DataLoaders.from_tensors(x[:64], y[:64], x[64:], y[64:], bs=16, seed=seed)


class _Spy(Callback):
    order = 50
    def __init__(self): self.seen = {True: [], False: []}
    def before_predict(self, learn): self.seen[learn.training].append(learn.xb.cpu().clone())   # batches may be on a GPU


def test_batch_aug_cb_changes_training_batches_only():
    x, y, dls = _dls()
    spy = _Spy()
    learn = Learner(mlp(), dls, lr=1e-3, cbs=[BatchAugCB(RandomErasing(p=1.), seed=0), spy], progress=False,
                    opt_func=torch.optim.Adam)
    learn.fit(1)
    assert torch.equal(torch.cat(spy.seen[False]), x[64:])             # validation untouched
    assert not torch.equal(torch.cat(spy.seen[True]).sort(0).values, x[:64].sort(0).values)


def test_mixup_equals_fastai():
    from fastai.callback.mixup import MixUp as FastaiMixUp
    from fastai.losses import CrossEntropyLossFlat
    xb, yb, pred = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)), torch.randn(16, 10)
    fake = SimpleNamespace(xb=(xb,), yb=(yb,), x=xb, y=yb, loss_func=CrossEntropyLossFlat(), training=True)
    fm = FastaiMixUp(0.4); fm.learn = fake; fm.before_train()
    torch.manual_seed(1); fm.before_batch()
    ours = SimpleNamespace(xb=xb, yb=yb, loss_func=F.cross_entropy, training=True)
    mu = MixUp(0.4); mu.learn = ours; mu.before_fit(ours)
    torch.manual_seed(1); mu.before_batch(ours)
    assert torch.allclose(ours.xb, fake.xb[0], atol=1e-6)
    assert torch.allclose(ours.loss_func(pred, yb), fake.loss_func(pred, yb), atol=1e-6)
    assert (mu.lam >= 0.5).all()


def test_mixup_mixes_a_loss_module_and_restores_it():
    x, y, dls = _dls()
    lf = LabelSmoothingCE(0.1)
    class Boom(Callback):
        def after_batch(self, learn):
            if learn.training: raise RuntimeError('boom')
    learn = Learner(mlp(), dls, loss_func=lf, lr=1e-3, cbs=[MixUp(0.4)], progress=False, opt_func=torch.optim.Adam)
    learn.fit(1)
    assert learn.loss_func is lf and lf.reduction == 'mean'
    with pytest.raises(RuntimeError): learn.fit(1, cbs=[Boom()])
    assert learn.loss_func is lf and lf.reduction == 'mean'            # restored even after an error


@pytest.mark.parametrize('eps', [0., 0.1, 0.5])
@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
def test_label_smoothing_matches_torch_and_fastai(eps, reduction):
    from fastai.losses import LabelSmoothingCrossEntropy
    g = torch.Generator().manual_seed(2)
    logits, targ = torch.randn(20, 6, generator=g), torch.randint(0, 6, (20,), generator=g)
    want = F.cross_entropy(logits, targ, label_smoothing=eps, reduction=reduction)
    assert torch.allclose(label_smoothing_ce(logits, targ, eps, reduction), want, atol=1e-6)
    assert torch.allclose(LabelSmoothingCE(eps, reduction)(logits, targ), want, atol=1e-6)
    assert torch.allclose(LabelSmoothingCE(eps, reduction)(logits, targ), LabelSmoothingCrossEntropy(eps, reduction=reduction)(logits, targ), atol=1e-6)


@pytest.mark.parametrize('p', [0.1, 0.5, 0.9])
def test_dropout_equals_nn_dropout(p):
    x = torch.randn(4, 1000)
    torch.manual_seed(0); want = nn.Dropout(p)(x)
    torch.manual_seed(0); got = Dropout(p)(x)
    assert torch.equal(got, want)
    assert abs((got == 0).float().mean().item() - p) < 0.03
    assert torch.equal(Dropout(p).eval()(x), x)


def test_dropout_bad_p():
    for p in (-0.1, 1., 2.):
        with pytest.raises(ValueError, match='0 <= p < 1'): Dropout(p)


def test_mlp_layers():
    m = mlp(64, 32, 10, p=0.2, bn=True)
    assert m(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert sum(isinstance(l, nn.BatchNorm1d) for l in m) == 2 and sum(isinstance(l, Dropout) for l in m) == 2
    assert all(l.bias is None for l in m if isinstance(l, nn.Linear) and l.out_features == 32)


def test_memorisation_cb_rows():
    x, y, dls = _dls()
    yt, fl = plant_label_noise(y[:64], 0.5, 10, seed=0)
    dls = DataLoaders.from_tensors(x[:64], yt, x[64:], y[64:], bs=16)
    cb = MemorisationCB(x[:64], yt, fl)
    learn = Learner(mlp(), dls, lr=1e-2, cbs=[MetricsCB(accuracy, log=None), cb], progress=False, opt_func=torch.optim.Adam)
    learn.fit(3)
    assert [r['epoch'] for r in cb.history] == [0, 1, 2]
    learn.model.eval()
    with torch.no_grad(): hit = learn.model(x[:64].to(learn.device)).argmax(-1).cpu() == yt   # the model stays on the learner's device
    assert cb.history[-1]['train_acc'] == pytest.approx(hit.float().mean().item())
    assert cb.history[-1]['memorised'] == pytest.approx(hit[fl].float().mean().item())
    assert cb.history[-1]['valid_acc'] == pytest.approx(learn.cb(MetricsCB).last['accuracy'])


def test_tta_blends_and_is_seeded():
    x, y, dls = _dls()
    learn = Learner(mlp(), dls, lr=1e-2, progress=False, opt_func=torch.optim.Adam)
    learn.fit(1)
    learn.model.train()
    plain, t = learn.get_preds()
    assert torch.equal(tta(learn, tfms=(), n=4)[0], plain)
    tf = (RandomAffine(),)
    aug, _ = tta(learn, tfms=tf, n=3, beta=None)
    both, t2 = tta(learn, tfms=tf, n=3)
    assert torch.equal(t2, t)
    assert torch.allclose(both, 0.25*plain + 0.75*aug, atol=1e-6)
    assert torch.allclose(both.sum(-1), torch.ones(len(both)), atol=1e-5)
    assert torch.equal(tta(learn, tfms=tf, n=3)[0], both)
    assert learn.model.training                                         # the model's mode is restored after eval


def test_progressive_resize_cb():
    cb = ProgressiveResizeCB([4, 4, 8])
    for epoch, want in [(0, 4), (1, 4), (2, 8), (7, 8)]:
        learn = SimpleNamespace(epoch=epoch, xb=torch.rand(2, 1, 8, 8))
        cb.before_batch(learn)
        assert learn.xb.shape == (2, 1, want, want)


def test_mixup_explains_a_loss_without_reduction():
    ours = SimpleNamespace(xb=torch.randn(4, 1, 8, 8), yb=torch.arange(4), loss_func=lambda p, t: F.cross_entropy(p, t), training=True)
    mu = MixUp(0.4); mu.learn = ours; mu.before_fit(ours); mu.before_batch(ours)
    with pytest.raises(TypeError, match="reduction='none'"): ours.loss_func(torch.randn(4, 10), ours.yb)


def test_tta_gives_probabilities_with_any_loss():
    x, y, dls = _dls()
    learn = Learner(mlp(), dls, loss_func=LabelSmoothingCE(0.1), lr=1e-2, progress=False, opt_func=torch.optim.Adam)
    learn.fit(1)
    for n, tf in ((0, ()), (2, (RandomAffine(),))):
        p, _ = tta(learn, tfms=tf, n=n)
        assert torch.allclose(p.sum(-1), torch.ones(len(p)), atol=1e-5) and (p >= 0).all()
