"""Reference answers to the exercises of lesson 03 (nbs/03_learner.ipynb). Try them yourself first."""
import math
import torch
from course_lib.learner import Callback, CancelFitException, MetricsCB

MODULE = 'course_lib.learner'


class EarlyStop(Callback):
    "Stop the fit once the validation loss has not beaten its best for `patience` epochs in a row."
    order = MetricsCB.order + 5
    def __init__(self, patience=3): self.patience = patience
    def before_fit(self, learn): self.best, self.waited = math.inf, 0
    def after_epoch(self, learn):
        if learn.training: return
        loss = learn.cb(MetricsCB).last['valid_loss']
        if loss < self.best: self.best, self.waited = loss, 0
        else:
            self.waited += 1
            if self.waited >= self.patience: raise CancelFitException()


class EarlyStopVsPrevious(EarlyStop):
    "Wrong: compares with the previous epoch instead of the best so far, so a small recovery resets the count."
    def before_fit(self, learn): self.prev, self.waited = math.inf, 0
    def after_epoch(self, learn):
        if learn.training: return
        loss = learn.cb(MetricsCB).last['valid_loss']
        self.waited = 0 if loss < self.prev else self.waited + 1
        self.prev = loss
        if self.waited >= self.patience: raise CancelFitException()


class ClipGradNorm(Callback):
    "Rescale all gradients together so that their global L2 norm is at most `max_norm`."
    def __init__(self, max_norm=1.): self.max_norm = max_norm
    def after_backward(self, learn):
        grads = [p.grad for p in learn.model.parameters() if p.grad is not None]
        total = torch.sqrt(sum((g**2).sum() for g in grads))
        scale = self.max_norm / (total + 1e-6)
        if scale < 1:
            for g in grads: g.mul_(scale)


class ClipEachTensor(ClipGradNorm):
    "Wrong: clips each parameter's gradient on its own instead of all of them together."
    def after_backward(self, learn):
        for p in learn.model.parameters():
            if p.grad is not None: torch.nn.utils.clip_grad_norm_([p], self.max_norm)


SOLUTIONS = {'03.early_stop': EarlyStop, '03.clip_grad': ClipGradNorm}
WRONG = {'03.early_stop': EarlyStopVsPrevious, '03.clip_grad': ClipEachTensor}
