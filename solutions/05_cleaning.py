"Reference answers for the exercises of nbs/05_cleaning.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import json
from pathlib import Path

import torch

MODULE = 'course_lib.cleaning'

# 1. The highest probability and its class, per item; a mistake the model is sure of: wrong class, high probability.
def confident_mistakes(probs, targs, threshold=0.9):
    conf, pred = probs.max(dim=1)
    return ((pred != targs) & (conf > threshold)).nonzero().flatten()

# 2. Count (true, given) pairs, then turn each row into shares: row t says where the items of true class t were filed.
def noise_matrix(given, true, n_classes):
    given, true = torch.as_tensor(given).long(), torch.as_tensor(true).long()
    counts = torch.bincount(true * n_classes + given, minlength=n_classes * n_classes).view(n_classes, n_classes).float()
    return counts / counts.sum(dim=1, keepdim=True).clamp_min(1)

# 3. A plan record holds a batch's moves; a done record names the batch and the index of the move that happened.
def done_moves(journal_path):
    plans, out = {}, []
    for line in Path(journal_path).read_text().splitlines():
        if not line.strip(): continue
        r = json.loads(line)
        if r['op'] == 'plan': plans[r['batch']] = r['moves']
        elif r['op'] == 'done': out.append(tuple(plans[r['batch']][r['i']][:2]))
    return out

SOLUTIONS = {'05.confident_mistakes': confident_mistakes, '05.noise_matrix': noise_matrix, '05.done_moves': done_moves}

WRONG = {
    '05.confident_mistakes': lambda probs, targs, threshold=0.9: (probs.argmax(1) != targs).nonzero().flatten(),  # ignores the threshold
    '05.noise_matrix': lambda given, true, n: noise_matrix(true, given, n),                                     # rows and columns swapped
    '05.done_moves': lambda p: [tuple(m[:2]) for line in Path(p).read_text().splitlines()                       # planned, not done
                                if (r := json.loads(line))['op'] == 'plan' for m in r['moves']],
}
