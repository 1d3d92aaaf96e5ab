"Reference solutions for the exercises of nbs/08_tabular.ipynb (try them yourself first)."
import numpy as np

MODULE = 'course_lib.tabular'

def expected_distinct(n, m):
    "Expected number of distinct rows in `m` draws with replacement from `n` rows."
    return n*(1 - (1 - 1/n)**m)

def ice(predict, X, col, grid):
    "Per-row predictions `[n_rows, len(grid)]` with column `col` set to each value of `grid`."
    X = np.array(X, copy=True)
    out = []
    for v in grid:
        X[:, col] = v
        out.append(predict(X))
    return np.stack(out, 1)

def _wrong_distinct(n, m): return n*np.exp(-m/n)          # the share left OUT, not the share drawn
def _wrong_ice(predict, X, col, grid):                    # changes the learner's X in place
    for v in grid: X[:, col] = v
    return np.stack([predict(X) for _ in grid], 1)

SOLUTIONS = {'08.expected_distinct': expected_distinct, '08.ice': ice}
WRONG = {'08.expected_distinct': _wrong_distinct, '08.ice': _wrong_ice}
