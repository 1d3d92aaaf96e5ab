"""Reference answers to the exercises of lesson 02b (nbs/02b_backprop.ipynb). Try them yourself first."""
import math
import torch
from course_lib.backprop import Layer, Value

MODULE = 'course_lib.backprop'


class Sigmoid(Layer):
    "sigmoid(x) = 1 / (1 + exp(-x)); its slope is s * (1 - s), computed from the saved output s."
    def forward(self, x): return 1 / (1 + torch.exp(-x))
    def backward(self, grad_out): return grad_out * self.out * (1 - self.out)


def cross_entropy_grad(logits, targets):
    "d/dz of mean_i(-z[i, t_i] + logsumexp(z[i])) = (softmax(z) - one_hot(t)) / n."
    grad = torch.softmax(logits, dim=1)
    grad[torch.arange(len(targets)), targets] -= 1
    return grad / len(targets)


def value_sigmoid(v):
    "One new node: sigmoid of v.data, whose local derivative with respect to v is s * (1 - s)."
    s = 1 / (1 + math.exp(-v.data))
    return Value(s, (v,), (s * (1 - s),), 'sigmoid')


class SigmoidSlopeWithoutOneMinus(Sigmoid):
    "Wrong: uses s as the slope, forgetting the (1 - s)."
    def backward(self, grad_out): return grad_out * self.out


def cross_entropy_grad_summed(logits, targets):
    "Wrong: the gradient of the summed loss; F.cross_entropy takes the mean over the rows."
    grad = torch.softmax(logits, dim=1)
    grad[torch.arange(len(targets)), targets] -= 1
    return grad


def value_sigmoid_slope_s(v):
    "Wrong: the right value, but the local derivative s instead of s * (1 - s)."
    s = 1 / (1 + math.exp(-v.data))
    return Value(s, (v,), (s,), 'sigmoid')


SOLUTIONS = {'02b.sigmoid_layer': Sigmoid, '02b.cross_entropy_grad': cross_entropy_grad,
             '02b.value_sigmoid': value_sigmoid}
WRONG = {'02b.sigmoid_layer': SigmoidSlopeWithoutOneMinus, '02b.cross_entropy_grad': cross_entropy_grad_summed,
         '02b.value_sigmoid': value_sigmoid_slope_s}
