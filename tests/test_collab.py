"Unit tests of course_lib.collab (the lesson notebook checks the models against fastai's collab_learner)."
import numpy as np, pandas as pd, pytest, torch
import torch.nn.functional as F
from course_lib.tabular import TabularPrep
from course_lib.collab import DotProduct, sigmoid_range, l2_penalty, align_factors, Recommender

def _prep(users, items):
    "Lesson 08's TabularPrep on ratings rows: user and item ids are its two categorical columns."
    n = max(len(users), len(items))
    df = pd.DataFrame(dict(user=(users * n)[:n], item=(items * n)[:n]))
    return TabularPrep(['user', 'item'], []).fit(df)

def test_ids_to_codes_unknown_is_zero():
    prep = TabularPrep(['user'], []).fit(pd.DataFrame(dict(user=[5, 3, 5, 9])))
    assert prep.classes['user'] == ['#na#', 3, 5, 9]
    assert prep.transform(pd.DataFrame(dict(user=[3, 5, 9, 4])))[0][:, 0].tolist() == [1, 2, 3, 0]

def test_dot_product_forward_and_range():
    torch.manual_seed(0)
    m = DotProduct(4, 5, 3, y_range=(0., 5.5))
    x = torch.tensor([[1, 2], [3, 4]])
    raw = (m.user_factors(x[:, 0])*m.item_factors(x[:, 1])).sum(1) + m.user_bias(x[:, 0])[:, 0] + m.item_bias(x[:, 1])[:, 0]
    torch.testing.assert_close(m(x), sigmoid_range(raw, 0., 5.5))
    assert DotProduct(4, 5, 3, bias=False).user_bias is None

def test_l2_penalty_equals_sgd_weight_decay():
    torch.manual_seed(0)
    m1 = DotProduct(4, 5, 3); m2 = DotProduct(4, 5, 3); m2.load_state_dict(m1.state_dict())
    x, y = torch.tensor([[1, 2], [3, 4], [1, 4]]), torch.tensor([1., 2., 3.])
    o1, o2 = torch.optim.SGD(m1.parameters(), lr=0.3), torch.optim.SGD(m2.parameters(), lr=0.3, weight_decay=0.2)
    (F.mse_loss(m1(x), y) + l2_penalty(m1, 0.2)).backward(); o1.step()
    F.mse_loss(m2(x), y).backward(); o2.step()
    for a, b in zip(m1.parameters(), m2.parameters()): torch.testing.assert_close(a, b)

def test_align_factors_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(200, 4))
    learned = np.c_[true @ rng.normal(size=(4, 4)), rng.normal(size=(200, 6))*1e-3] + 2.
    _, r2 = align_factors(learned, true, np.arange(100))
    assert r2 > 0.99
    _, r2_noise = align_factors(rng.normal(size=(200, 10)), true, np.arange(100))
    assert r2_noise < 0.2

def test_recommender_unknown_ids():
    torch.manual_seed(0)
    prep = _prep([10, 20], [1, 2, 3])
    model = DotProduct(3, 4, 2, y_range=(0., 5.5))
    rec = Recommender(model, prep)
    known = rec.predict([20, 10], [3, 1])
    torch.testing.assert_close(torch.tensor(known), model(torch.tensor([[2, 3], [1, 1]])).detach())   # ids -> codes, then the model
    with pytest.raises(KeyError, match='user 99'): rec.predict([99], [1])
    with pytest.raises(ValueError): rec.predict([10], [1], unknown='zero')
    p = rec.predict([99, 10], [1, 1], unknown='average')
    assert p.shape == (2,) and np.isfinite(p).all()
    with pytest.raises(ValueError): Recommender(DotProduct(3, 4, 2, bias=False), prep)
    with pytest.raises(ValueError, match='fit a TabularPrep'): Recommender(model, TabularPrep(['user', 'item'], []))
    with pytest.raises(ValueError, match='film'): Recommender(model, prep, item='film')
