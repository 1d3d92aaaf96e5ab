"Reference answers for the exercises of nbs/07_nlp.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import torch

MODULE = 'course_lib.nlp'

# 1. torch stacks the three gates' rows as (reset, update, new). The reset gate scales the hidden part of the
#    candidate only; the update gate mixes the old state and the candidate.
def gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    xr, xz, xn = (x @ w_ih.t() + b_ih).chunk(3, dim=1)
    hr, hz, hn = (h @ w_hh.t() + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h

# 2. Per layer: 4 gates x (nh x n_in input weights + nh x nh hidden weights + two biases of nh).
#    The first layer reads ni inputs, the others nh.
def lstm_params(ni, nh, n_layers=1):
    per_layer = lambda n_in: 4 * nh * (n_in + nh) + 2 * 4 * nh
    return per_layer(ni) + (n_layers - 1) * per_layer(nh)

SOLUTIONS = {'07.gru_cell': gru_step, '07.lstm_params': lstm_params}

def _gru_reset_on_all(x, h, w_ih, w_hh, b_ih, b_hh):       # applies the reset gate to the input part too
    xr, xz, xn = (x @ w_ih.t() + b_ih).chunk(3, dim=1)
    hr, hz, hn = (h @ w_hh.t() + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    return (1 - z) * torch.tanh(r * (xn + hn)) + z * h

WRONG = {
    '07.gru_cell': _gru_reset_on_all,
    '07.lstm_params': lambda ni, nh, n_layers=1: n_layers * (4 * nh * (ni + nh) + 4 * nh),   # one bias; every layer reads ni
}
