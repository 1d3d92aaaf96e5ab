"""Fast checks of course_lib.scale: two gloo processes on this machine (file rendezvous, so parallel test workers never
clash over a port), bounded in time and cleaned up on failure: gradient averaging == one process, DDP == one process,
the Learner with DistributedCB == one process (weights and metrics), accumulation == a large batch."""
import os, time

import psutil
import pytest
import torch
from torch import nn
from fastcore.test import test_close as assert_close

from course_lib.learner import Learner, MetricsCB
from course_lib.scale import (launch, scale_demo, train_single, train_learner, flat_params, toy_model, toy_dls,
                              shard_loader, AccumTrainCB, MixedPrecisionCB, DistributedCB, free_port)

torch.set_num_threads(1)


def _children():
    "Our live child processes, but multiprocessing's resource tracker (started once, lives as long as this process)."
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and 'resource_tracker' not in ' '.join(p.cmdline()): out.add(p.pid)
        except psutil.NoSuchProcess: pass
    return out


@pytest.fixture(scope='module')
def demo():
    before = _children()
    res = launch(scale_demo, 8, 32, 0.1, world_size=2, timeout=240)
    assert not (_children() - before), 'launch left processes behind'
    return res


def test_gradient_averaging_by_hand_equals_one_process(demo):
    ref = train_single(8, 32, 0.1)
    assert (ref - flat_params(toy_model())).abs().max() > 1e-2            # training moved the weights
    for r in demo: assert_close(r['by_hand'], ref, eps=1e-5)
    assert torch.equal(demo[0]['by_hand'], demo[1]['by_hand'])


def test_ddp_and_sampler_equal_one_process(demo):
    ref = train_single(8, 32, 0.1, shuffle_seed=3)
    for r in demo: assert_close(r['ddp'], ref, eps=1e-5)
    assert (ref - train_single(8, 32, 0.1)).abs().max() > 1e-3           # the shuffle mattered: the check can fail


def test_distributed_learner_equals_one_process_weights_and_metrics(demo):
    single = train_learner(n_epochs=2, bs=32, lr=0.1)
    for r in demo:
        run = r['learner_acc1']
        assert_close(run['params'], single['params'], eps=1e-5)
        assert len(run['history']) == 2
        for a, b in zip(run['history'], single['history']):
            for k in ('train_loss', 'valid_loss', 'accuracy'): assert_close(a[k], b[k], eps=1e-5)


def test_accumulation_under_ddp_syncs_once_per_step(demo):
    single = train_learner(n_epochs=2, bs=32, lr=0.1)
    a1, a2 = demo[0]['learner_acc1'], demo[0]['learner_acc2']
    assert_close(a2['params'], single['params'], eps=1e-5)
    assert a2['batches'] == 2 * a1['batches'] and a2['syncs'] == a1['syncs'] > 0


def test_accumulation_equals_large_batch():
    big = train_learner(n_epochs=2, bs=32, lr=0.1)
    for n_acc in (2, 4):
        assert_close(train_learner(n_epochs=2, bs=32, lr=0.1, n_acc=n_acc)['params'], big['params'], eps=1e-5)
    assert (train_learner(n_epochs=2, bs=8, lr=0.1)['params'] - big['params']).abs().max() > 1e-2
    with pytest.raises(ValueError, match='n_acc'): AccumTrainCB(0)


def test_single_process_distributed_cb_is_a_no_op():
    runs = []
    for cbs in ([], [DistributedCB()]):
        learn = Learner(toy_model(), toy_dls(32), lr=0.1, progress=False, device='cpu', cbs=cbs + [MetricsCB(log=None)])
        learn.fit(1); runs.append(flat_params(learn.model))
    assert torch.equal(*runs)


def test_shard_loader_needs_a_divisible_batch():
    with pytest.raises(ValueError, match='multiple of 3'): shard_loader(toy_dls(32).train, 0, 3)
    assert len(shard_loader(toy_dls(32).train, 1, 2)) == 16


def test_bfloat16_autocast_follows_float32():
    curves = []
    for cbs in ([], [MixedPrecisionCB()]):
        learn = Learner(toy_model(), toy_dls(32), lr=0.1, progress=False, device='cpu', cbs=cbs + [MetricsCB(log=None)])
        learn.fit(2); curves.append(torch.tensor(learn.recorder.losses))
    assert learn.preds.dtype == torch.bfloat16
    assert ((curves[0] - curves[1]).abs() / curves[0]).max() < 0.01
    assert not torch.equal(curves[0], curves[1])                          # it did run in 16 bits


def _fail_on_rank1():
    import torch.distributed as dist
    if dist.get_rank() == 1: raise RuntimeError('rank 1 fails on purpose')
    dist.barrier()                                                          # rank 0 would wait for ever without cleanup


def _hang():
    time.sleep(600)


def test_launch_reports_a_failing_rank_and_cleans_up():
    before, t = _children(), time.time()
    with pytest.raises(RuntimeError, match='(?s)in rank 1 .*rank 1 fails on purpose'): launch(_fail_on_rank1, timeout=120)
    assert time.time() - t < 120
    assert not (_children() - before)


def test_launch_times_out_and_cleans_up():
    before, t = _children(), time.time()
    with pytest.raises(TimeoutError, match='did not finish'): launch(_hang, timeout=15)
    assert time.time() - t < 40
    assert not (_children() - before)


def test_launch_refuses_notebook_functions(monkeypatch):
    import sys, types
    monkeypatch.setitem(sys.modules, '__main__', types.ModuleType('__main__'))   # like a notebook: no __file__
    def local(): pass
    local.__module__ = '__main__'
    with pytest.raises(ValueError, match='cannot import it'): launch(local)


def test_free_port_is_bindable():
    import socket
    with socket.socket() as s: s.bind(('127.0.0.1', free_port()))
