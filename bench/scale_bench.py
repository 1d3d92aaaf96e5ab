"""Training at scale on the machine at hand (lesson 12): two measurements in one run.

1. Overhead of the course's `Learner` (with `DistributedCB`) against a raw PyTorch loop, in one process and in two
   DDP processes (gloo), epochs of the two interleaved so that load from other programs hits both alike. Reports the
   median of the per-round ratios learner/raw (the claim to check: within 10%).
2. Throughput (training samples per second, over all processes) at 1 and 2 processes on the CPU; with a GPU, also
   one GPU in float32 against mixed precision (`MixedPrecisionCB`, float16 + GradScaler).

    python bench/scale_bench.py [--rounds 15] [--items 4096] [--bs 64] [--nh 256]

Not a test: the numbers depend on the machine and on what else runs on it. Printed last: one line per setting.
"""
import argparse, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from course_lib.data import DataLoaders
from course_lib.learner import Learner, Callback, MetricsCB
from course_lib.scale import shard_loader, launch, rank_world, toy_data, toy_model, DistributedCB, MixedPrecisionCB


class EpochTimer(Callback):
    "Wall time of each training epoch (validation is off in this benchmark)."
    order = 100
    def before_epoch(self, learn): self.t = time.perf_counter()
    def after_epoch(self, learn): self.times.append(time.perf_counter() - self.t)
    def __init__(self): self.times = []


def measure(n_rounds, n_items, bs, nh, device='cpu', mixed=False):
    "Runs in each process: interleaved epochs of a raw loop and of the Learner; returns their epoch times."
    rank, world = rank_world()
    x, y = toy_data(n_items)
    ds = TensorDataset(x, y)
    # the raw loop: what one writes by hand with DDP
    raw_model = toy_model(nh=nh).to(device)
    if world > 1: raw_model = DDP(raw_model)
    opt = torch.optim.SGD(raw_model.parameters(), lr=0.05)
    # the same loaders the Learner gets: one indexing per batch, sharded by the same sampler under DDP
    raw_dl = DataLoaders.from_tensors(x, y, x[:0], y[:0], bs=bs, shuffle=False).train
    if world > 1: raw_dl = shard_loader(raw_dl, rank, world)
    def raw_epoch():
        t = time.perf_counter()
        for xb, yb in raw_dl:
            xb, yb = xb.to(device), yb.to(device)
            F.cross_entropy(raw_model(xb), yb).backward(); opt.step(); opt.zero_grad()
        if device != 'cpu': torch.cuda.synchronize()
        return time.perf_counter() - t
    timer = EpochTimer()
    cbs = [DistributedCB(), timer, MetricsCB(log=None)] + ([MixedPrecisionCB()] if mixed else [])
    learn = Learner(toy_model(nh=nh), DataLoaders.from_tensors(x, y, x[:0], y[:0], bs=bs, shuffle=False),
                    lr=0.05, progress=False, device=device, cbs=cbs)
    learn.dls.valid = None                                                    # training epochs only
    raw_times = []
    for _ in range(n_rounds):                                                 # interleaved: raw, learner, raw, learner...
        raw_times.append(raw_epoch())
        learn.fit(1)
    return dict(raw=raw_times, learner=timer.times, world=world, n_items=n_items)


def summary(name, res):
    raw, lrn = res['raw'][1:], res['learner'][1:]                            # the first round warms up
    ratio = statistics.median(l / r for l, r in zip(lrn, raw))
    sps = res['n_items'] / statistics.median(lrn)
    print(f'{name:28s} raw {statistics.median(raw)*1e3:7.1f} ms/epoch  learner {statistics.median(lrn)*1e3:7.1f} ms/epoch  '
          f'learner/raw {ratio:.3f}  learner throughput {sps:,.0f} samples/s')
    return ratio


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=15)
    ap.add_argument('--items', type=int, default=4096)
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--nh', type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(1)
    args = (a.rounds, a.items, a.bs, a.nh)
    one = measure(*args)
    two = launch(measure, *args, world_size=2, timeout=1800)[0]
    summary('CPU, 1 process', one)
    summary('CPU, 2 processes (DDP)', two)
    if torch.cuda.is_available():
        summary('1 GPU, float32', measure(*args, device='cuda'))
        summary('1 GPU, mixed precision', measure(*args, device='cuda', mixed=True))
