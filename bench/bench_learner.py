"""How much does the Learner's callback machinery cost? Median epoch time, side by side in one run, of

  1. a raw PyTorch loop (train pass + validation pass, averaging the losses),
  2. our `course_lib.learner.Learner` with its default callbacks (progress bar off),
  3. fastai's `Learner` (progress bar and logging off),

on the same tiny MLP, the same data (scikit-learn's digits, batch size 32) and the same seed. Epochs of the three are
interleaved, so load from other processes hits all three alike; torch uses one thread (the matrices are tiny). Besides
the wall-clock medians it prints CPU-time medians and the median of per-round ratios, which are steadier on a busy
machine. Before timing, it checks that our Learner's losses after one epoch equal the raw loop's (to 1e-5) from the
same seed. The last line reads `learner/raw = <ratio of the median wall-clock epoch times>`.

    python bench/bench_learner.py [--epochs 60] [--warmup 3] [--no-fastai]
"""
import argparse, contextlib, io, statistics, sys, time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch
import torch.nn.functional as F
from torch import nn
from sklearn.datasets import load_digits

from course_lib.core import seed_everything, default_device
from course_lib.data import DataLoaders
from course_lib.learner import Learner, MetricsCB

BS, LR, SEED = 32, 0.1, 42

def get_data():
    "scikit-learn's 1,797 digits, pixels scaled to 0..1, a seeded 80/20 split."
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X, dtype=torch.float32)/16, torch.tensor(y)
    idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(SEED))
    n = int(0.8*len(X))
    return X[idx[:n]], y[idx[:n]], X[idx[n:]], y[idx[n:]]

def get_model():
    seed_everything(SEED)
    return nn.Sequential(nn.Linear(64, 50), nn.ReLU(), nn.Linear(50, 10))

def get_dls(data): return DataLoaders.from_tensors(*data, bs=BS, seed=SEED)

class RawLoop:
    "The loop everyone writes by hand."
    def __init__(self, data, device):
        self.model, self.dls, self.device = get_model().to(device), get_dls(data), device
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)

    def epoch(self):
        model, opt, dev = self.model, self.opt, self.device
        model.train()
        tot, n = 0., 0
        for xb, yb in self.dls.train:
            xb, yb = xb.to(dev), yb.to(dev)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward(); opt.step(); opt.zero_grad()
            tot += loss.item()*len(yb); n += len(yb)
        train_loss = tot/n
        model.eval()
        tot, n = 0., 0
        with torch.no_grad():
            for xb, yb in self.dls.valid:
                xb, yb = xb.to(dev), yb.to(dev)
                tot += F.cross_entropy(model(xb), yb).item()*len(yb); n += len(yb)
        return train_loss, tot/n

def ours(data, device):
    learn = Learner(get_model(), get_dls(data), loss_func=F.cross_entropy, lr=LR, progress=False, device=device)
    def epoch():
        learn.fit(1)
        row = learn.cb(MetricsCB).last
        return row['train_loss'], row['valid_loss']
    return epoch

def fastai_learner(data, device):
    from fastai.learner import Learner as FastaiLearner
    from fastai.data.core import DataLoaders as FastaiDataLoaders
    from fastai.data.load import DataLoader as FastaiDataLoader
    from fastai.optimizer import SGD as FastaiSGD
    import fastai.callback.progress  # noqa: F401  (adds no_bar; the bar itself is turned off below)
    xt, yt, xv, yv = data
    dls = FastaiDataLoaders(FastaiDataLoader(list(zip(xt, yt)), bs=BS, shuffle=True),
                            FastaiDataLoader(list(zip(xv, yv)), bs=BS), device=device)
    learn = FastaiLearner(dls, get_model(), loss_func=F.cross_entropy, opt_func=FastaiSGD, lr=LR)
    def epoch():
        with learn.no_bar(), learn.no_logging(): learn.fit(1)
    return epoch

def timed(f):
    "Wall-clock and CPU seconds of one call."
    t, c = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - t, time.process_time() - c

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--epochs', type=int, default=60, help='timed epochs of each (after the warm-up)')
    ap.add_argument('--warmup', type=int, default=3, help='untimed epochs of each first')
    ap.add_argument('--no-fastai', action='store_true', help="skip fastai's Learner")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)          # tiny matrices: threads add only noise
    device, data = default_device(), get_data()
    print(f'torch {torch.__version__}, device {device}, {len(data[0])} train / {len(data[2])} valid digits, bs {BS}')

    # 1. the same seed gives the same losses
    raw_losses = RawLoop(data, device).epoch()
    with contextlib.redirect_stdout(io.StringIO()): our_losses = ours(data, device)()
    print(f'after one epoch: raw loop train/valid loss {raw_losses[0]:.6f}/{raw_losses[1]:.6f}, '
          f'Learner {our_losses[0]:.6f}/{our_losses[1]:.6f}')
    for a, b in zip(raw_losses, our_losses):
        assert abs(a - b) <= 1e-5, f'Learner and raw loop disagree after one epoch: {raw_losses} vs {our_losses}'

    # 2. timings, interleaved: round i times one epoch of each, so a burst of load hits all three alike
    runners = {'raw': RawLoop(data, device).epoch, 'learner': ours(data, device)}
    if not args.no_fastai: runners['fastai'] = fastai_learner(data, device)
    wall, cpu = {k: [] for k in runners}, {k: [] for k in runners}
    with contextlib.redirect_stdout(io.StringIO()):
        for i in range(args.warmup + args.epochs):
            for k, f in runners.items():
                w, c = timed(f)
                if i >= args.warmup: wall[k].append(w); cpu[k].append(c)
    med = lambda xs: statistics.median(xs)
    paired = lambda t, k: med([a/b for a, b in zip(t[k], t['raw'])])
    for k in runners:
        print(f'{k:>8}: median epoch {med(wall[k])*1e3:7.2f} ms wall, {med(cpu[k])*1e3:7.2f} ms cpu '
              f'(wall min {min(wall[k])*1e3:.2f}, max {max(wall[k])*1e3:.2f}; {len(wall[k])} epochs)')
    for k in [k for k in runners if k != 'raw']:
        print(f'{k}/raw: ratio of median wall times {med(wall[k])/med(wall["raw"]):.3f}, of median cpu times '
              f'{med(cpu[k])/med(cpu["raw"]):.3f}; median of per-round wall ratios {paired(wall, k):.3f}')
    if 'fastai' in runners: print(f'fastai/raw = {med(wall["fastai"])/med(wall["raw"]):.3f}')
    print(f'learner/raw = {med(wall["learner"])/med(wall["raw"]):.3f}')

if __name__ == '__main__': main()
