"""Reference answers to the exercises of lesson 03b (nbs/03b_schedule.ipynb). Try them yourself first."""
from course_lib.schedule import combine_scheds, sched_lin

MODULE = 'course_lib.schedule'


def one_cycle_linear(n_steps, lr_max, pct_start=0.25, div=25., div_final=1e5):
    "One cycle with linear phases, counted like `OneCycleLR`: the peak at step pct_start*n_steps - 1."
    warm = min(max((pct_start*n_steps - 1)/max(n_steps - 1, 1), 0.), 1.)
    f = combine_scheds([warm, 1 - warm], [sched_lin(lr_max/div, lr_max), sched_lin(lr_max, lr_max/div_final)])
    return [f(i/max(n_steps - 1, 1)) for i in range(n_steps)]


def one_cycle_linear_naive_peak(n_steps, lr_max, pct_start=0.25, div=25., div_final=1e5):
    "Wrong: puts the peak at pos = pct_start, not at step pct_start*n_steps - 1 as OneCycleLR does."
    f = combine_scheds([pct_start, 1 - pct_start], [sched_lin(lr_max/div, lr_max), sched_lin(lr_max, lr_max/div_final)])
    return [f(i/max(n_steps - 1, 1)) for i in range(n_steps)]


def sched_poly(start, end, power):
    "From `start` (pos=0) to `end` (pos=1) along (1 - pos)**power."
    return lambda pos: end + (start - end)*(1 - pos)**power


SOLUTIONS = {'03b.one_cycle_linear': one_cycle_linear, '03b.sched_poly': sched_poly}
WRONG = {'03b.one_cycle_linear': one_cycle_linear_naive_peak,
         '03b.sched_poly': lambda start, end, power: (lambda pos: start*(1 - pos)**power)}   # forgets `end`
