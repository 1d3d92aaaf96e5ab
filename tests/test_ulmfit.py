"Transfer pieces of `course_lib.ulmfit` (embedding matching, fastai weights, batching, pooling, unfreezing, sampling) against fastai and torch."
import math
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from course_lib.nlp import awd_lstm_lm, Vocab, tokenize
from course_lib.ulmfit import (match_embeddings, load_pretrained, lm_state_from_fastai, ClassifierLoader, masked_concat_pool,
                               TextClassifier, text_classifier, classifier_groups, freeze_to, sample_next, generate)

def test_match_embeddings_equals_fastai():
    from fastai.text.learner import match_embeds
    old, new = ['xxunk', 'a', 'b', 'c', 'd'], ['xxunk', 'd', 'zz', 'a', 'yy', 'b']
    w, b = torch.randn(5, 4), torch.randn(5)
    theirs = match_embeds({'0.encoder.weight': w.clone(), '1.decoder.bias': b.clone()}, old, new)
    ours_w, ours_b = match_embeddings(w, old, new, b)
    assert torch.allclose(ours_w, theirs['0.encoder.weight']) and torch.allclose(ours_b, theirs['1.decoder.bias'])
    assert torch.allclose(match_embeddings(w, old, new), ours_w)

def test_load_pretrained_keeps_known_words():
    torch.manual_seed(0)
    old, new = Vocab(['xxunk', 'xxpad', 'a', 'b', 'c'] + ['xxfake'] * 3), Vocab(['xxunk', 'xxpad', 'c', 'new', 'a'] + ['xxfake'] * 3)
    src = awd_lstm_lm(len(old), 6, 8, 2)
    dst = load_pretrained(awd_lstm_lm(len(new), 6, 8, 2), src.state_dict(), old.itos, new.itos)
    assert torch.equal(dst.encoder.emb.weight[2], src.encoder.emb.weight[4])      # 'c'
    assert torch.allclose(dst.encoder.emb.weight[3], src.encoder.emb.weight.mean(0))  # 'new'
    assert dst.decoder.out.weight is dst.encoder.emb.weight
    assert torch.equal(dst.encoder.rnns[1].cell.hh.weight, src.encoder.rnns[1].cell.hh.weight)

@pytest.mark.parametrize('n_layers', [1, 3])
def test_fastai_weights_give_fastai_predictions(n_layers):
    from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_lm_config
    from fastai.text.models.core import get_language_model
    torch.manual_seed(1)
    fa = get_language_model(AWD_LSTM, 40, awd_lstm_lm_config | dict(emb_sz=10, n_hid=14, n_layers=n_layers), drop_mult=0.7)
    ours = awd_lstm_lm(40, 10, 14, n_layers, drop_mult=0.7)
    ours.load_state_dict(lm_state_from_fastai(fa.state_dict()))
    x = torch.randint(0, 40, (2, 8))
    fa.eval(); ours.eval(); fa.reset(); ours.reset()
    assert torch.allclose(ours(x), fa(x)[0], atol=1e-5)
    fa.train(); ours.train(); fa.reset(); ours.reset()
    torch.manual_seed(2); a = fa(x)[0]
    torch.manual_seed(2); b = ours(x)
    assert torch.allclose(a, b, atol=1e-5)

def test_classifier_loader_pads_sorts_and_keeps_labels():
    docs = [torch.full((n,), n) for n in (5, 2, 9, 3, 7, 1, 4)]
    labels = torch.tensor([n % 2 for n in (5, 2, 9, 3, 7, 1, 4)])
    seen = []
    for x, y in ClassifierLoader(docs, labels, bs=3, pad_id=-1):
        lens = (x != -1).sum(1)
        assert (lens[:-1] >= lens[1:]).all()                        # sorted, longest first
        for row, l, lab in zip(x, lens, y):
            assert (row[:l] == l).all() and (row[l:] == -1).all() and lab == l % 2   # padding at the end, label kept
            seen.append(int(l))
    assert sorted(seen) == sorted(len(d) for d in docs)
    torch.manual_seed(0)
    got = sorted(int(n) for x, _ in ClassifierLoader(docs, labels, bs=2, shuffle=True, pad_id=-1) for n in (x != -1).sum(1))
    assert got == sorted(len(d) for d in docs)
    with pytest.raises(ValueError, match='one label per text'): ClassifierLoader(docs, labels[:3])

def test_masked_concat_pool_equals_fastai():
    from fastai.text.models.core import masked_concat_pool as fa_pool
    torch.manual_seed(0)
    out = torch.randn(6, 10, 3)
    lens = torch.tensor([10, 1, 4, 7, 2, 9])
    mask = torch.arange(10)[None] >= lens[:, None]
    assert torch.allclose(masked_concat_pool(out, mask), fa_pool(out, mask, bptt=10))

def test_classifier_ignores_padding_and_unfreezes_in_order():
    torch.manual_seed(0)
    m = text_classifier(30, 8, 12, 2, drop_mult=0.).eval()
    x = torch.randint(2, 30, (1, 6))
    padded = torch.cat([x, torch.ones(1, 4, dtype=torch.long)], 1)
    assert torch.allclose(m(x), m(padded), atol=1e-6)
    groups = classifier_groups(m)
    assert len(groups) == 4 and sum(len(g) for g in groups) == len(list(m.parameters()))
    for n, want in [(1, [0, 0, 0, 1]), (2, [0, 0, 1, 1]), (3, [0, 1, 1, 1]), (-1, [1, 1, 1, 1])]:
        freeze_to(m, n)
        assert [int(all(p.requires_grad for p in g)) for g in groups] == want

def test_sampling_and_generation():
    logits = torch.tensor([3., 1., 0., -2.])
    assert int(sample_next(logits, 0.)) == 0
    g = torch.Generator().manual_seed(0)
    for T in (0.5, 2.):
        d = sample_next(logits.expand(30000, 4), T, g)
        freq = torch.bincount(d, minlength=4) / len(d)
        assert torch.allclose(freq, torch.distributions.Categorical(logits=logits / T).probs, atol=0.015)
    vocab = Vocab.build([tokenize('the film was good . the film was bad .')] * 3, min_freq=1)
    lm = awd_lstm_lm(len(vocab), 8, 8, 2)
    a = generate(lm, vocab, 'The film', 12, 1., seed=3)
    assert a == generate(lm, vocab, 'The film', 12, 1., seed=3) and len(a) == 12
    assert not {'xxunk', 'xxpad', 'xxfake'} & set(a)
    assert len(set(generate(lm, vocab, 'The film', 30, 0., seed=1))) <= len(set(generate(lm, vocab, 'The film', 30, 5., seed=1)))
