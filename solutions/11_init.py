"Reference answers for the exercises of nbs/11_init.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import math
import torch
from torch import nn

MODULE = 'course_lib.init'

# 1. A uniform distribution on [-b, b] has std b/sqrt(3); Kaiming's std is sqrt(2/((1 + leak**2)*n_in)).
def kaiming_uniform_bound(n_in, leak=0.):
    return math.sqrt(3) * math.sqrt(2 / ((1 + leak**2) * n_in))

# 2. LayerNorm without the mean, and without a bias.
class RMSNorm(nn.Module):
    def __init__(self, normalized_shape, eps=1e-6):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.weight = eps, nn.Parameter(torch.ones(self.normalized_shape))
    def forward(self, x):
        dims = tuple(range(-len(self.normalized_shape), 0))
        return x / (x.pow(2).mean(dims, keepdim=True) + self.eps).sqrt() * self.weight

SOLUTIONS = {'11.kaiming_uniform_bound': kaiming_uniform_bound, '11.rms_norm': RMSNorm}

def _lnorm(normalized_shape, eps=1e-6):                       # subtracts the mean: that is LayerNorm
    return nn.LayerNorm(normalized_shape, eps=eps, bias=False)

WRONG = {'11.kaiming_uniform_bound': lambda n_in, leak=0.: math.sqrt(2 / ((1 + leak**2) * n_in)),   # the std, not the bound
         '11.rms_norm': _lnorm}
