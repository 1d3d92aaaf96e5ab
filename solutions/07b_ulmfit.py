"Reference answers for the exercises of nbs/07b_ulmfit.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import torch
import torch.nn.functional as F

MODULE = 'course_lib.ulmfit'

# 1. Softmax over the k largest logits only (after the temperature), scattered back to their positions.
def top_k_probs(logits, k, temperature=1.):
    v, i = logits.topk(k, dim=-1)
    return torch.zeros_like(logits).scatter(-1, i, F.softmax(v / temperature, -1))

# 2. Sort, keep each token while the probability mass before it is below p, renormalise.
def top_p_probs(logits, p):
    probs = F.softmax(logits, -1)
    s, i = probs.sort(-1, descending=True)
    kept = s * ((s.cumsum(-1) - s) < p)
    out = torch.zeros_like(probs).scatter(-1, i, kept)
    return out / out.sum(-1, keepdim=True)

SOLUTIONS = {'07b.top_k': top_k_probs, '07b.top_p': top_p_probs}

def _top_k_no_temperature(logits, k, temperature=1.):     # forgets the temperature
    return top_k_probs(logits, k, 1.)

def _top_p_inclusive(logits, p):                          # keeps tokens while the sum INCLUDING them is below p: one too few
    probs = F.softmax(logits, -1)
    s, i = probs.sort(-1, descending=True)
    kept = s * (s.cumsum(-1) < p)
    kept[..., 0] = s[..., 0]
    out = torch.zeros_like(probs).scatter(-1, i, kept)
    return out / out.sum(-1, keepdim=True)

WRONG = {'07b.top_k': _top_k_no_temperature, '07b.top_p': _top_p_inclusive}
