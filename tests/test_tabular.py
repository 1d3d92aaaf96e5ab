"Unit tests of course_lib.tabular (the lesson notebook checks the same pieces against fastai and scikit-learn)."
import numpy as np, pandas as pd, pytest
from sklearn.tree import DecisionTreeRegressor
from sklearn.ensemble import RandomForestRegressor
from course_lib.tabular import (add_date_parts, TabularPrep, best_split, DecisionTree, RandomForest, oob_predictions,
                                r2_score, permutation_importance, partial_dependence, tree_contributions,
                                forest_contributions, TabularNet, tabular_tensors, emb_sz_rule, redundant_pairs)

def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[rng.integers(0, 5, n), rng.normal(size=n), rng.uniform(0, 10, n)].astype(np.float32)
    y = 2*(X[:, 0] > 2) + np.sin(X[:, 2]) + 0.1*rng.normal(size=n)
    return X, y

def test_date_parts():
    df = pd.DataFrame({'saledate': ['1/31/2000 0:00', '2/1/1970 0:00'], 'x': [1, 2]})
    out = add_date_parts(df, 'saledate', fmt='%m/%d/%Y %H:%M')
    assert 'saledate' not in out and out.saleYear.tolist() == [2000, 1970] and out.saleIs_month_end.tolist() == [True, False]
    assert out.saleElapsed.tolist() == [949276800.0, 31*86400.0]
    with pytest.raises(KeyError, match='No column'): add_date_parts(df, 'nope')

def test_prep_unseen_and_missing():
    tr = pd.DataFrame({'c': ['a', 'b', None], 's': ['S', 'L', 'M'], 'v': [1., np.nan, 3.], 'y': [1., 2, 3]})
    p = TabularPrep(['c', 's'], ['v'], 'y', ordered={'s': ['S', 'M', 'L']}).fit(tr)
    cats, conts, y = p.transform(pd.DataFrame({'c': ['b', 'zzz'], 's': ['L', 'S'], 'v': [np.nan, 3.]}))
    assert cats.tolist() == [[2, 3, 2], [0, 1, 1]] and y is None        # unseen -> 0; ordered codes; v_na
    assert p.all_cat_names == ['c', 's', 'v_na'] and p.card == [3, 4, 3]
    with pytest.raises(ValueError, match='missing from its order'): TabularPrep(['s'], [], ordered={'s': ['S']}).fit(tr)
    with pytest.raises(RuntimeError): TabularPrep(['c'], ['v']).transform(tr)
    with pytest.raises(KeyError): TabularPrep(['nope'], ['v']).fit(tr)

def test_best_split_and_tree_vs_sklearn():
    assert best_split(np.ones(5), np.arange(5.))[0] == -np.inf                     # constant column: no split
    X, y = _data()
    for depth, leaf in [(3, 1), (6, 10), (None, 20)]:
        ours = DecisionTree(depth, leaf).fit(X, y)
        sk = DecisionTreeRegressor(max_depth=depth, min_samples_leaf=leaf, random_state=0).fit(X, y)
        assert ours.n_leaves == sk.get_n_leaves()
        np.testing.assert_allclose(ours.predict(X), sk.predict(X), atol=1e-9)
    with pytest.raises(ValueError): DecisionTree(min_samples_leaf=0)

def test_oob_matches_sklearn_and_forest():
    X, y = _data()
    sk = RandomForestRegressor(n_estimators=30, oob_score=True, random_state=0).fit(X, y)
    p = oob_predictions(sk.estimators_, sk.estimators_samples_, X)
    np.testing.assert_allclose(p, sk.oob_prediction_, atol=1e-9)
    assert abs(r2_score(y, p) - sk.oob_score_) < 1e-9
    rf = RandomForest(30, max_features=0.5, min_samples_leaf=3).fit(X, y)
    assert r2_score(y, rf.oob_prediction_) > 0.8 and rf.tree_preds(X).shape == (30, len(X))

def test_importance_pd_contributions():
    X, y = _data()
    sk = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    rmse = lambda p, t: float(np.sqrt(((p - t)**2).mean()))
    imp, std = permutation_importance(sk.predict, X, y, rmse, n_repeats=3)
    assert imp[1] < min(imp[0], imp[2])                                            # column 1 is noise
    from sklearn.inspection import partial_dependence as skpd
    grid = np.linspace(0, 10, 5)
    np.testing.assert_allclose(partial_dependence(sk.predict, X, 2, grid),
                               skpd(sk, X, [2], method='brute', custom_values={2: grid})['average'][0])
    b, c = forest_contributions(sk.estimators_, X[0])
    assert abs(b + c.sum() - sk.predict(X[:1])[0]) < 1e-9
    corr = np.array([[1, .95, 0], [.95, 1, 0], [0, 0, 1.]])
    assert redundant_pairs(corr, ['a', 'b', 'c']) == [('a', 'b', 0.95)]

def test_tabular_net_shapes_and_range():
    import torch
    net = TabularNet([(5, emb_sz_rule(5)), (3, 2)], n_cont=2, layers=[8], y_range=(1., 2.))
    x = tabular_tensors(np.array([[1, 2], [4, 0], [0, 1]]), np.zeros((3, 2), np.float32))
    out = net.eval()(x)
    assert out.shape == (3,) and ((out > 1) & (out < 2)).all()
    with pytest.raises(ValueError): tabular_tensors(np.array([[2**24]]), np.zeros((1, 1)))
