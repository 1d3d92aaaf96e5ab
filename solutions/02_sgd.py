"""Reference answers to the exercises of lesson 02 (nbs/02_sgd.ipynb). Try them yourself first."""
import torch

MODULE = 'course_lib.sgd'


def sgd_step(params, lr):
    "One SGD step in place on every tensor of `params`, then clear the gradients."
    with torch.no_grad():
        for p in params: p -= lr * p.grad
    for p in params: p.grad = None


def max_lr(c):
    "One step multiplies w by (1 - 2*lr*c); it grows when that factor is below -1, i.e. lr > 1/c."
    return 1 / c


def sgd_step_keeps_grads(params, lr):
    "Wrong: steps correctly but never clears the gradients, so they pile up from step to step."
    with torch.no_grad():
        for p in params: p -= lr * p.grad


SOLUTIONS = {'02.sgd_step': sgd_step, '02.max_lr': max_lr}
WRONG = {'02.sgd_step': sgd_step_keeps_grads,
         '02.max_lr': lambda c: 2 / c}          # 2/curvature with the curvature taken as c instead of 2c
