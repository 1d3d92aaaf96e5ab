"Reference answers for the exercises of nbs/10_gans.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import torch
import torch.nn.functional as F

MODULE = 'course_lib.gans'

# 1. The hinge critic loss: real outputs should be above 1, fake ones below -1; past that, no gradient.
def hinge_critic_loss(real_out, fake_out):
    return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()

# 2. With diagonal covariances the matrix square root is the element-wise one, and
#    var1 + var2 - 2 sqrt(var1 var2) = (sqrt(var1) - sqrt(var2))**2.
def frechet_diag(mu1, var1, mu2, var2):
    return (mu1 - mu2).pow(2).sum() + (var1.sqrt() - var2.sqrt()).pow(2).sum()

SOLUTIONS = {'10.hinge_critic_loss': hinge_critic_loss, '10.frechet_diag': frechet_diag}

WRONG = {'10.hinge_critic_loss': lambda r, f: F.relu(1 - r).mean() + F.relu(1 - f).mean(),        # the fake term's sign
         '10.frechet_diag': lambda m1, v1, m2, v2: (m1 - m2).pow(2).sum() + (v1 - v2).pow(2).sum()}  # variances, not std devs
