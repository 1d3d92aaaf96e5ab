"Reference answers for the exercises of nbs/12_scale.ipynb. Try them yourself first: the lesson's stubs and `check` say what is wrong."
import torch

MODULE = 'course_lib.scale'

# 1. DistributedSampler without shuffling: pad 0..n-1 with its own start up to a multiple of world, then stride.
def shard_indices(n, rank, world):
    total = -(-n // world) * world                     # n rounded up to a multiple of world
    idx = list(range(n))
    idx += (idx * (total // n + 1))[:total - n]        # repeat from the start (n may be smaller than world)
    return idx[rank:total:world]

# 2. Round to nearest, ties to even, on the bits: add 0x7FFF plus the lowest kept bit, then clear the low 16 bits.
def to_bf16(x):
    bits = x.float().view(torch.int32)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits & -65536).view(torch.float32)         # -65536 == 0xFFFF0000 as a signed 32-bit int

SOLUTIONS = {'12.shard_indices': shard_indices, '12.to_bf16': to_bf16}

def _truncate(x):                                      # drops the low bits: rounds towards zero, not to nearest
    return (x.float().view(torch.int32) & -65536).view(torch.float32)

WRONG = {'12.shard_indices': lambda n, rank, world: list(range(n))[rank::world],   # no padding: ranks get unequal shares
         '12.to_bf16': _truncate}
