"Reference answers for the exercises of nbs/04b_interpret.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import torch

MODULE = 'course_lib.interpret'

# 1. Row i holds the images of actual class i; the diagonal cell the ones predicted right.
def recall_per_class(cm):
    cm = torch.as_tensor(cm).float()
    return cm.diag() / cm.sum(1).clamp_min(1)                # a class with no image: 0/1 = 0

# 2. -log softmax(z)[t] = logsumexp(z) - z[t], with the largest logit taken out before exponentiating.
def cross_entropy_from_logits(logits, targs):
    m = logits.max(1, keepdim=True).values
    lse = m[:, 0] + (logits - m).exp().sum(1).log()
    return lse - logits.gather(1, targs[:, None])[:, 0]

SOLUTIONS = {'04b.recall_per_class': recall_per_class, '04b.cross_entropy_from_logits': cross_entropy_from_logits}

WRONG = {
    '04b.recall_per_class': lambda cm: torch.as_tensor(cm).float().diag() / torch.as_tensor(cm).float().sum(0).clamp_min(1),  # precision
    '04b.cross_entropy_from_logits': lambda z, t: -z.softmax(1).gather(1, t[:, None])[:, 0].log(),   # overflows to inf
}
