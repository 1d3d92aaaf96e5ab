"Tokenizer rules, BPE, vocabulary, LM loader, LSTM and AWD-LSTM pieces of `course_lib.nlp`, against fastai, tokenizers and torch."
import json, random
from types import SimpleNamespace
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from course_lib.nlp import (apply_rules, tokenize, split_words, TEXT_RULES, SPECIAL_TOKS, BPE, BPE_SPLIT, merge_pair, Vocab,
                            LMLoader, LSTMCell, LSTMLayer, lstm_weights_from_torch, RNNDropout, EmbeddingDropout, AWDLSTM,
                            awd_lstm_lm, ar_tar, RNNRegularizer, GradClipCB, ResetCB, lm_loss)
from course_lib.offline_text import review_text

TRICKY = ["This film is SOOOO good, really really really good!  I'd see it at 8/10 #1.", "I LOVE IT", "A film.",
          "Hmmmm... NO!!!", "the the the the end", "word word", "a/b\\c ##x", "It's  OK, U.S.A. is BIG", "   padded   text  ",
          "CamelCase and iPhone", "", "x", "AAAA aaaa", "Don't stop, won't stop."]

def _texts(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [review_text(rng)[0] for _ in range(n)]

@pytest.fixture(scope='module')
def fc():
    import fastai.text.core as fc
    return fc

def _fastai_rules(fc):
    return [fc.replace_rep, fc.replace_wrep, fc.spec_add_spaces, fc.rm_useless_spaces, fc.replace_all_caps, fc.replace_maj, fc.lowercase]

def test_rules_equal_fastai(fc):
    rules = _fastai_rules(fc)
    for t in TRICKY + _texts():
        want = t
        for r in rules: want = r(want)
        assert apply_rules(t) == want, t

def test_tokenize_equals_fastai_spacy_on_reviews(fc):
    texts = _texts(200, 1)
    tok = fc.TokenizeWithRules(fc.SpacyTokenizer(), rules=_fastai_rules(fc))
    assert [tokenize(t) for t in texts] == [list(o) for o in tok(texts)]

def test_special_tokens():
    assert tokenize('The END was not bad.') == ['xxbos', 'xxmaj', 'the', 'xxup', 'end', 'was', 'not', 'bad', '.']
    assert tokenize('sooooo') == ['xxbos', 's', 'xxrep', '5', 'o']
    assert tokenize('go go go go') == ['xxbos', 'xxwrep', '4', 'go']
    assert split_words("don't os.path 3.4") == ['do', "n't", 'os.path', '3.4']

def _hf_bpe(texts, vocab_size, min_freq=2):
    from tokenizers import Tokenizer, models, trainers, pre_tokenizers, Regex
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(BPE_SPLIT.pattern), behavior='isolated'),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_freq, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    merges = [tuple(m.split(' ')) if isinstance(m, str) else tuple(m) for m in json.loads(tok.to_str())['model']['merges']]
    return tok, merges

def test_bpe_toy_by_hand():
    bpe = BPE.train(['aaabdaaabac'], 300)
    assert bpe.merges == [('a', 'a'), ('a', 'b'), ('aa', 'ab')]
    assert bpe.tokens('aaabdaaabac') == ['aaab', 'd', 'aaab', 'a', 'c']
    assert merge_pair(list('aaaa'), ('a', 'a')) == ['aa', 'aa'] and merge_pair(list('aaa'), ('a', 'a')) == ['aa', 'a']

@pytest.mark.parametrize('vocab_size,min_freq', [(300, 2), (700, 2), (500, 5)])
def test_bpe_equals_huggingface(vocab_size, min_freq):
    texts = _texts(400, 2) + TRICKY + ['aaaa bbbb aaaa', 'ééé ñ 日本 日本']
    bpe = BPE.train(texts, vocab_size, min_freq)
    ref, merges = _hf_bpe(texts, vocab_size, min_freq)
    assert bpe.merges == merges
    assert bpe.vocab == ref.get_vocab()
    for t in _texts(50, 3) + TRICKY: assert bpe.encode(t) == ref.encode(t).ids

def test_bpe_roundtrip_any_text():
    bpe = BPE.train(_texts(200, 4), 400)
    rng = np.random.default_rng(5)
    alphabet = list("ab Z9 .,\t\n\r") + list('éß日本🙂\u200b\x00\x7fΩ')
    for _ in range(300):
        x = ''.join(rng.choice(alphabet, rng.integers(0, 30)))
        assert bpe.decode(bpe.encode(x)) == x

@pytest.mark.parametrize('min_freq,max_vocab', [(3, 60000), (1, 50), (2, 64)])
def test_vocab_equals_fastai_numericalize(min_freq, max_vocab):
    from fastai.text.data import Numericalize
    docs = [tokenize(t) for t in _texts(200, 6)]
    num = Numericalize(min_freq=min_freq, max_vocab=max_vocab); num.setup(docs)
    v = Vocab.build(docs, min_freq, max_vocab)
    assert v.itos == list(num.vocab) and len(v) % 8 == 0
    for d in docs[:30]: assert torch.equal(v.numericalize(d), num(d))
    assert v.numericalize(['never-seen-token']).tolist() == [0]

def _ids(n=60, seed=7):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 50, (int(torch.randint(3, 40, (1,), generator=g)),), generator=g) for _ in range(n)]

@pytest.mark.parametrize('bs,seq_len', [(4, 12), (7, 5), (3, 100)])
def test_lm_loader_equals_fastai(bs, seq_len):
    from fastai.text.data import LMDataLoader
    ids = _ids()
    ours = list(LMLoader(ids, bs, seq_len))
    theirs = [(a, b) for a, b in LMDataLoader(ids, bs=bs, seq_len=seq_len)]
    assert len(ours) == len(theirs)
    for (a, b), (c, d) in zip(ours, theirs): assert torch.equal(a, c) and torch.equal(b, d)
    for (x0, y0), (x1, y1) in zip(ours, ours[1:]): assert torch.equal(x1[:, 0], y0[:, -1])
    for x, y in ours: assert torch.equal(x[:, 1:], y[:, :-1])

def test_lm_loader_shuffles_like_fastai():
    from fastai.text.data import LMDataLoader
    ids = _ids()
    random.seed(0)
    f = LMDataLoader(ids, bs=5, seq_len=9, shuffle=True)
    o = LMLoader(ids, bs=5, seq_len=9, shuffle=True)
    st = random.getstate()
    theirs = [[(a.clone(), b.clone()) for a, b in f] for _ in range(2)]
    random.setstate(st)
    ours = [list(o) for _ in range(2)]
    for e in range(2):
        for (a, b), (c, d) in zip(ours[e], theirs[e]): assert torch.equal(a, c) and torch.equal(b, d)
    assert not torch.equal(ours[0][0][0], ours[1][0][0])

def test_lm_loader_too_short_says_what_to_do():
    with pytest.raises(ValueError, match='smaller `bs`'): LMLoader([torch.arange(5)], bs=8, seq_len=4)

def test_lstm_equals_torch():
    torch.manual_seed(0)
    tc, c = nn.LSTMCell(4, 6), LSTMCell(4, 6)
    lstm_weights_from_torch(c, tc)
    x, h, s = torch.randn(3, 4), torch.randn(3, 6), torch.randn(3, 6)
    h1, (_, c1) = c(x, (h, s)); th, tcs = tc(x, (h, s))
    assert torch.allclose(h1, th, atol=1e-6) and torch.allclose(c1, tcs, atol=1e-6)
    tl = nn.LSTM(4, 6, num_layers=3, batch_first=True)
    layers = [lstm_weights_from_torch(LSTMLayer(4 if k == 0 else 6, 6), tl, k) for k in range(3)]
    x = torch.randn(2, 11, 4)
    want, (hn, cn) = tl(x)
    out, hs = x, []
    for l in layers: out, st = l(out); hs.append(st)
    assert torch.allclose(out, want, atol=1e-5)
    assert torch.allclose(torch.stack([h for h, _ in hs]), hn, atol=1e-5)
    # gradients too
    want.sum().backward(); out.sum().backward()
    assert torch.allclose(layers[0].cell.hh.weight.grad, tl.weight_hh_l0.grad, atol=1e-4)

def test_dropouts_equal_fastai():
    from fastai.text.models.awdlstm import EmbeddingDropout as FE, RNNDropout as FR, WeightDropout as FW
    x = torch.randn(4, 7, 6)
    torch.manual_seed(1); a = FR(0.4)(x)
    torch.manual_seed(1); b = RNNDropout(0.4)(x)
    assert torch.allclose(a, b)
    emb, words = nn.Embedding(30, 6, padding_idx=1), torch.randint(0, 30, (4, 9))
    torch.manual_seed(2); a = FE(emb, 0.5)(words)
    torch.manual_seed(2); b = EmbeddingDropout(emb, 0.5)(words)
    assert torch.allclose(a, b)
    tl = nn.LSTM(6, 5, batch_first=True)
    fw, ours = FW(tl, 0.5).train(), lstm_weights_from_torch(LSTMLayer(6, 5, weight_p=0.5), tl).train()
    torch.manual_seed(3); a, _ = fw(x)
    torch.manual_seed(3); b, _ = ours(x)
    assert torch.allclose(a, b, atol=1e-5)

def test_variational_mask_is_per_sequence():
    out = RNNDropout(0.5).train()(torch.ones(8, 20, 10))
    zero = out == 0
    assert zero.any() and (zero == zero[:, :1]).all()
    assert torch.equal(RNNDropout(0.5).eval()(torch.ones(2, 3, 4)), torch.ones(2, 3, 4))

def test_awd_lstm_state_tying_and_penalty():
    lm = awd_lstm_lm(40, 16, 24, 3).eval()
    assert lm.decoder.out.weight is lm.encoder.emb.weight
    x = torch.randint(0, 40, (3, 10))
    a = lm(x); b = lm(x)
    assert not torch.allclose(a, b)
    lm.reset(); assert torch.allclose(lm(x), a)
    assert lm.raw.shape == (3, 10, 16)
    raw, drp = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    assert torch.isclose(ar_tar(raw, drp, 2., 1.), 2 * drp.pow(2).mean() + (raw[:, 1:] - raw[:, :-1]).pow(2).mean())
    assert torch.isclose(ar_tar(raw[:, :1], drp[:, :1], 2., 1.), 2 * drp[:, :1].pow(2).mean())

def test_awd_lstm_equals_fastai_awd_lstm():
    "Our encoder with the weights of fastai's AWD_LSTM gives its output, in evaluation and (same seed) in training mode."
    from fastai.text.models.awdlstm import AWD_LSTM
    torch.manual_seed(0)
    fa = AWD_LSTM(50, 12, 20, 3, pad_token=1, hidden_p=0.3, input_p=0.2, embed_p=0.1, weight_p=0.4)
    ours = AWDLSTM(50, 12, 20, 3, embed_p=0.1, input_p=0.2, weight_p=0.4, hidden_p=0.3)
    sd = fa.state_dict()
    with torch.no_grad():
        ours.emb.weight.copy_(sd['encoder.weight'])
        for k, r in enumerate(ours.rnns):
            r.cell.ih.weight.copy_(sd[f'rnns.{k}.module.weight_ih_l0']); r.cell.ih.bias.copy_(sd[f'rnns.{k}.module.bias_ih_l0'])
            r.cell.hh.weight.copy_(sd[f'rnns.{k}.weight_hh_l0_raw']); r.cell.hh.bias.copy_(sd[f'rnns.{k}.module.bias_hh_l0'])
    x = torch.randint(0, 50, (4, 9))
    fa.eval(); ours.eval(); fa.reset(); ours.reset()
    assert torch.allclose(fa(x), ours(x), atol=1e-5)
    assert torch.allclose(fa(x), ours(x), atol=1e-5)          # the carried state too
    fa.train(); ours.train(); fa.reset(); ours.reset()
    torch.manual_seed(5); a = fa(x)
    torch.manual_seed(5); b = ours(x)
    assert torch.allclose(a, b, atol=1e-5)

def test_regularizer_and_clipping_callbacks():
    from course_lib.learner import Learner, MetricsCB
    torch.manual_seed(0)
    ids = torch.randint(0, 30, (2000,))
    dls = SimpleNamespace(train=LMLoader([ids], 8, 10), valid=LMLoader([ids[:500]], 8, 10))
    lm = awd_lstm_lm(30, 16, 16, 2)
    seen = {}
    class Spy:
        order = 100
        def after_loss(self, learn):
            if learn.training: seen['loss'] = learn.loss.item(); seen['base'] = lm_loss(learn.preds, learn.yb).item(); seen['pen'] = ar_tar(lm.raw, lm.dropped, 2., 1.).item()
        def before_step(self, learn):
            seen['norm'] = torch.norm(torch.stack([p.grad.norm() for p in learn.model.parameters() if p.grad is not None])).item()
    learn = Learner(lm, dls, lm_loss, lr=1e-2, cbs=[ResetCB(), RNNRegularizer(2., 1.), GradClipCB(0.05), Spy()], progress=False,
                    opt_func=torch.optim.Adam)
    learn.cb(MetricsCB).log = learn.cb(MetricsCB)._log = None
    learn.fit(1)
    assert abs(seen['loss'] - seen['base'] - seen['pen']) < 1e-4 and seen['pen'] > 0
    assert seen['norm'] <= 0.05 + 1e-5
