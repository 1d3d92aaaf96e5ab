"""Reference answers to the exercises of lesson 03a (nbs/03a_optim.ipynb). Try them yourself first."""
import torch
from course_lib.optim import Optimizer, SGD, RMSProp

MODULE = 'course_lib.optim'


class NesterovSGD(Optimizer):
    "SGD with Nesterov momentum, as `torch.optim.SGD(nesterov=True)`."
    def __init__(self, params, lr=0.1, mom=0.9): super().__init__(params, lr=lr, mom=mom)
    def update(self, p, grad, state, lr, mom, **_):
        buf = state.get('buf')
        if buf is None: buf = state['buf'] = grad.clone()
        else: buf.mul_(mom).add_(grad)
        p.add_(grad.add(buf, alpha=mom), alpha=-lr)


class CenteredRMSProp(Optimizer):
    "RMSProp divided by the running standard deviation of the gradient, as `torch.optim.RMSprop(centered=True)`."
    def __init__(self, params, lr=1e-2, sqr_mom=0.99, eps=1e-8): super().__init__(params, lr=lr, sqr_mom=sqr_mom, eps=eps)
    def update(self, p, grad, state, lr, sqr_mom, eps, **_):
        if not state: state.update(sqr_avg=torch.zeros_like(p), grad_avg=torch.zeros_like(p))
        state['sqr_avg'].mul_(sqr_mom).addcmul_(grad, grad, value=1 - sqr_mom)
        state['grad_avg'].lerp_(grad, 1 - sqr_mom)
        var = state['sqr_avg'] - state['grad_avg']**2
        p.addcdiv_(grad, var.sqrt().add_(eps), value=-lr)


SOLUTIONS = {'03a.nesterov': NesterovSGD, '03a.centered_rmsprop': CenteredRMSProp}
WRONG = {'03a.nesterov': lambda params, lr=0.1, mom=0.9: SGD(params, lr=lr, mom=mom),        # plain momentum
         '03a.centered_rmsprop': lambda params, lr=1e-2, sqr_mom=0.99, eps=1e-8: RMSProp(params, lr=lr, sqr_mom=sqr_mom, eps=eps)}
