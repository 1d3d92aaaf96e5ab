"Reference answers for the exercises of nbs/04_cnn.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import torch

MODULE = 'course_lib.cnn'

# 1. Bright above, dark below: +1 under the bright rows, -1 under the dark ones; each column adds up to 0.
bottom_edge = torch.tensor([[ 1.,  1.,  1.],
                            [ 0.,  0.,  0.],
                            [-1., -1., -1.]])

# 2. A dilated kernel spans (ks - 1)*dilation + 1 pixels: that span replaces ks in the usual formula.
def out_size(n, ks, stride=1, padding=0, dilation=1):
    return (n + 2*padding - (ks - 1)*dilation - 1)//stride + 1

# 3. ni*ks*ks weights per output channel, no bias (BatchNorm follows), and BatchNorm's weight and bias per channel.
def n_params_block(ni, nf, ks):
    return ni*nf*ks*ks + 2*nf

SOLUTIONS = {'04.bottom_edge': bottom_edge, '04.out_size': out_size, '04.n_params_block': n_params_block}

WRONG = {
    '04.bottom_edge': -bottom_edge,                                                        # the top edge
    '04.out_size': lambda n, ks, stride=1, padding=0, dilation=1: (n + 2*padding - ks)//stride + 1,   # ignores dilation
    '04.n_params_block': lambda ni, nf, ks: ni*nf*ks*ks + 3*nf,                            # counts a conv bias
}
