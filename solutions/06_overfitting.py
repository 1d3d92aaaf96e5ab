"""Reference answers to the exercises of lesson 06 (nbs/06_overfitting.ipynb). Try them yourself first."""
import torch
import torch.nn.functional as F

MODULE = 'course_lib.overfitting'


def smooth_targets(y, n_classes, eps):
    "eps/n_classes everywhere, plus 1-eps on the labelled class: rows add up to 1."
    return F.one_hot(y, n_classes).float()*(1 - eps) + eps/n_classes


def classic_dropout(x, p, training):
    "Drop a share p while training without rescaling; multiply by 1-p at test time (the expected value of training)."
    if not training: return x*(1 - p)
    return x*torch.empty_like(x).bernoulli_(1 - p)


def cutmix(x, perm, box):
    "Paste the box of the shuffled batch into a copy of x; lam is the share of the area each image keeps."
    top, left, h, w = box
    out = x.clone()
    out[..., top:top+h, left:left+w] = x[perm][..., top:top+h, left:left+w]
    return out, 1 - h*w/(x.shape[-2]*x.shape[-1])


def smooth_targets_other_classes(y, n_classes, eps):
    "Wrong: 1-eps on the label and eps spread over the *other* classes only (a common variant, not PyTorch's)."
    one_hot = F.one_hot(y, n_classes).float()
    return one_hot*(1 - eps) + (1 - one_hot)*eps/(n_classes - 1)


def inverted_dropout(x, p, training):
    "Wrong: today's inverted dropout (scale by 1/(1-p) while training, identity at test time)."
    if not training: return x
    return x*torch.empty_like(x).bernoulli_(1 - p)/(1 - p)


def cutmix_lam_of_box(x, perm, box):
    "Wrong: the images are right, but lam is the share of the pasted box instead of the share kept."
    out, lam = cutmix(x, perm, box)
    return out, 1 - lam


SOLUTIONS = {'06.smooth_targets': smooth_targets, '06.classic_dropout': classic_dropout, '06.cutmix': cutmix}
WRONG = {'06.smooth_targets': smooth_targets_other_classes, '06.classic_dropout': inverted_dropout,
         '06.cutmix': cutmix_lam_of_box}
