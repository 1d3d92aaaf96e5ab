"Confusion matrix, most confused, top losses and one-image prediction of `course_lib.interpret`, in plain Python."
import matplotlib
matplotlib.use('Agg')
import pytest
import torch
import torch.nn.functional as F

from course_lib.cnn import resnet_small
from course_lib.interpret import (confusion_matrix, plot_confusion_matrix, most_confused, top_losses, plot_top_losses,
                                  predict_image)


def test_confusion_matrix_matches_sklearn():
    from sklearn.metrics import confusion_matrix as sk_cm
    g = torch.Generator().manual_seed(0)
    t, p = torch.randint(0, 6, (500,), generator=g), torch.randint(0, 6, (500,), generator=g)
    cm = confusion_matrix(p, t, 6)
    assert (cm.numpy() == sk_cm(t.numpy(), p.numpy(), labels=range(6))).all()
    assert confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 0]), 3).shape == (3, 3)   # absent classes kept
    assert (confusion_matrix(p, t) == cm).all()              # n_classes inferred from the largest index


def test_confusion_matrix_of_nothing():
    empty = torch.zeros(0, dtype=torch.long)
    cm = confusion_matrix(empty, empty, 4)
    assert cm.shape == (4, 4) and cm.dtype == torch.long and cm.sum() == 0
    assert confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    assert confusion_matrix(empty, empty, 0).shape == (0, 0)
    with pytest.raises(ValueError, match='pass n_classes'): confusion_matrix(empty, empty)
    plot_confusion_matrix(cm)


def test_most_confused():
    cm = torch.tensor([[5, 2, 0], [7, 3, 1], [0, 2, 9]])
    assert most_confused(cm, ['a', 'b', 'c']) == [('b', 'a', 7), ('a', 'b', 2), ('c', 'b', 2), ('b', 'c', 1)]
    assert most_confused(cm, ['a', 'b', 'c'], min_val=3) == [('b', 'a', 7)]


def test_top_losses_equal_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits, targs = torch.randn(50, 4, generator=g)*3, torch.randint(0, 4, (50,), generator=g)
    ce = F.cross_entropy(logits, targs, reduction='none')
    losses, idx = top_losses(logits, targs, k=5)
    assert torch.allclose(losses, ce.topk(5).values, atol=1e-6)
    assert torch.allclose(ce[idx], losses, atol=1e-6)
    assert len(top_losses(logits, targs, k=500)[0]) == 50


def test_top_losses_exact_for_confident_mistakes():
    "Probabilities underflow to 0 for these; from the logits the losses stay exact and distinct (no cap near 27.6)."
    logits = torch.tensor([[0., 60.], [0., 2000.], [0., 90.], [5., 0.], [0., 1e4]])
    targs = torch.zeros(5, dtype=torch.long)
    want = F.cross_entropy(logits, targs, reduction='none')
    losses, idx = top_losses(logits, targs, k=5)
    assert idx.tolist() == [4, 1, 2, 0, 3]
    assert torch.equal(losses, want[idx])
    assert torch.allclose(losses[:4], torch.tensor([1e4, 2000., 90., 60.]))
    assert torch.isfinite(losses).all() and losses[0] > 27.7


def test_top_losses_half_precision_logits_and_device():
    logits, targs = torch.tensor([[0., 30.], [1., 0.]]).half(), torch.tensor([0, 0])
    losses, idx = top_losses(logits, targs, k=2)
    assert losses.dtype == torch.float32 and idx.tolist() == [0, 1]
    if torch.cuda.is_available():
        l, i = top_losses(logits.cuda(), targs, k=2)        # targets on the CPU: moved to the logits' device
        assert i.tolist() == [0, 1]


def test_plot_top_losses_runs():
    g = torch.Generator().manual_seed(0)
    xs, logits, targs = torch.rand(12, 1, 8, 8, generator=g), torch.randn(12, 3, generator=g), torch.randint(0, 3, (12,), generator=g)
    plot_top_losses(xs, logits, targs, ['a', 'b', 'c'], k=4, ncols=4)


def test_predict_image_on_models_device():
    torch.manual_seed(0)
    m = resnet_small().train()
    x = torch.randn(1, 28, 28)
    label, probs = predict_image(m, x, list('0123456789'))
    assert m.training and probs.device.type == 'cpu'
    m.eval()
    with torch.no_grad(): want = F.softmax(m(x[None]), 1)[0]
    assert torch.allclose(probs, want, atol=1e-6) and label == str(int(want.argmax()))


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match='0..2'): confusion_matrix(torch.tensor([0, 3]), torch.tensor([1, 2]), 3)
    with pytest.raises(ValueError, match='targets'): confusion_matrix(torch.tensor([0, 1]), torch.tensor([1]), 3)
    with pytest.raises(ValueError, match=r'logits \[N, classes\]'): top_losses(torch.rand(5), torch.zeros(5, dtype=torch.long))
