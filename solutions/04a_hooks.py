"Reference answers for the exercises of nbs/04a_hooks.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import torch
from course_lib.hooks import Hook

MODULE = 'course_lib.hooks'

# 1. A hook function receives the hook itself first: keep the list on it.
def record_stats(hook, module, inp, outp):
    if getattr(hook, 'stats', None) is None: hook.stats = []
    hook.stats.append((outp.mean().item(), outp.std().item()))

# 2. Grad-CAM: keep the body's output in the graph, backpropagate the class score, weight the channels by the
#    gradient averaged over the grid. With global average pooling then a linear layer, d score / d A[k, x, y] is
#    W[c, k]/(h*w) at every position, so Grad-CAM = CAM / (h*w).
def _keep_with_grad(hook, module, inp, outp):
    outp.retain_grad()
    hook.stored = outp

def grad_cam(model, x, cls):
    dev = next(model.parameters()).device
    with Hook(model.body, _keep_with_grad) as h:
        out = model(x.to(dev))
        out[:, cls].sum().backward()
    acts = h.stored
    weights = acts.grad.mean((2, 3))                          # [N, channels]
    model.zero_grad()
    return torch.einsum('nk,nkhw->nhw', weights, acts).detach().cpu()

SOLUTIONS = {'04a.record_stats': record_stats, '04a.grad_cam': grad_cam}

def _record_input_stats(hook, module, inp, outp):           # the input, not the output
    if getattr(hook, 'stats', None) is None: hook.stats = []
    hook.stats.append((inp[0].mean().item(), inp[0].std().item()))

def _unweighted_cam(model, x, cls):                          # forgets the gradient weights
    from course_lib.hooks import Hook as _H
    with _H(model.body) as h, torch.no_grad(): model(x)
    return h.stored.mean(1).cpu()

WRONG = {'04a.record_stats': _record_input_stats, '04a.grad_cam': _unweighted_cam}
