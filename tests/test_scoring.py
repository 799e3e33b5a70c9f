"""The LM scoring engine against hand-written references on tiny Llama models."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from evobench.errors import NonFiniteError  # noqa: E402
from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer  # noqa: E402
from evobench.scoring import (  # noqa: E402
    GenerateRequest,
    LMEngine,
    LoglikelihoodRequest,
    prompt_hash,
    record,
)

PROMPTS = ["Tom has 3 apples and buys 5 more. How many", "Question: what is 7 plus 6? Answer:", "太郎は",
           "A shop sells 12 pens.", "A", "花子はペンを12本持っています。4本あげました。"]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_llama(tiny_llama_config(tok), seed=3, std=0.2)


@pytest.fixture(scope="module")
def other(tok):
    return tiny_llama(tiny_llama_config(tok), seed=4, std=0.2)


def reference_greedy(model, ids, n, eos=None):
    """Greedy decoding by hand: a full forward pass of the unpadded sequence per step, no cache."""
    ids, new = list(ids), []
    with torch.no_grad():
        for _ in range(n):
            t = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            new.append(t)
            ids.append(t)
            if t == eos:
                break
    return new


def reference_logprob(model, ctx, cont):
    """Sum of log-softmax over one unbatched forward pass of ctx + cont."""
    with torch.no_grad():
        logits = model(torch.tensor([list(ctx) + list(cont)])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    return sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


def test_batched_generation_equals_greedy_alone(tok, model):
    reqs = [GenerateRequest(p, (), n) for p, n in zip(PROMPTS, [7, 12, 5, 9, 3, 10], strict=True)]
    out = LMEngine(tok, batch_size=3).generate(model, reqs)
    for r, g in zip(reqs, out, strict=True):
        ids = tok.encode(r.prompt)
        want = reference_greedy(model, ids, r.max_new_tokens, eos=tok.eos_token_id)
        assert list(g.token_ids) == want
        assert g.n_prompt_tokens == len(ids) and g.n_new_tokens == len(want) == r.max_new_tokens
        assert g.stopped_by == "length" and g.stop is None
        assert g.text == tok.decode(want, skip_special_tokens=True)


def test_left_padding_keeps_absolute_positions(tok):
    """With learned absolute positions (GPT-2), each row's positions must start at its first token."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2, initializer_range=0.2,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        gpt2 = GPT2LMHeadModel(config).eval()
    reqs = [GenerateRequest(p, (), 6) for p in PROMPTS[:3]]
    out = LMEngine(tok, batch_size=3).generate(gpt2, reqs)
    assert [list(g.token_ids) for g in out] == [reference_greedy(gpt2, tok.encode(r.prompt), 6) for r in reqs]


def test_stop_string_cuts_text_and_ends_generation(tok, model):
    ids = tok.encode(PROMPTS[0])
    free = reference_greedy(model, ids, 40)
    full = tok.decode(free)
    # a two-letter ASCII stop string taken from the middle of the unconstrained continuation
    at = next(i for i in range(4, len(full) - 1) if full[i:i + 2].isascii() and full[i:i + 2].isalpha())
    stop = full[at:at + 2]
    first = full.index(stop)
    need = next(k for k in range(1, len(free) + 1) if stop in tok.decode(free[:k]))
    reqs = [GenerateRequest(PROMPTS[0], ("never-generated", stop), 40), GenerateRequest(PROMPTS[1], (), 6)]
    g, _ = LMEngine(tok, batch_size=2).generate(model, reqs)
    assert g.text == full[:first] and g.stopped_by == "stop" and g.stop == stop
    assert list(g.token_ids) == free[:need] and g.n_new_tokens == need < 40


def test_earliest_stop_string_wins(tok, model):
    full = tok.decode(reference_greedy(model, tok.encode(PROMPTS[1]), 30))
    a, b = full[2:4], full[10:12]
    g = LMEngine(tok).generate(model, [GenerateRequest(PROMPTS[1], (b, a), 30)])[0]
    assert g.text == full[:full.index(a)] and g.stop == a


def test_eos_ends_generation_and_is_not_in_text(tok, model):
    ids = tok.encode(PROMPTS[2])
    free = reference_greedy(model, ids, 12)
    eos = free[3]  # declare the fourth generated token an end-of-sequence token
    k = free.index(eos)
    engine = LMEngine(tok, batch_size=2, eos_token_ids=[eos])
    g, longer = engine.generate(model, [GenerateRequest(PROMPTS[2], (), 12), GenerateRequest(PROMPTS[0], (), 12)])
    assert g.stopped_by == "eos" and list(g.token_ids) == free[:k + 1] and g.n_new_tokens == k + 1
    assert g.text == tok.decode(free[:k])
    assert longer.n_new_tokens == 12 or longer.stopped_by == "eos"


def test_max_new_tokens_and_left_truncation(tok, model):
    long = " ".join(PROMPTS)
    ids = tok.encode(long)
    engine = LMEngine(tok, max_length=24)
    g = engine.generate(model, [GenerateRequest(long, (), 4)])[0]
    assert g.n_prompt_tokens == 20 and g.n_new_tokens == 4 and g.stopped_by == "length"
    assert list(g.token_ids) == reference_greedy(model, ids[-20:], 4)
    with pytest.raises(ValueError, match="no room"):
        engine.generate(model, [GenerateRequest(long, (), 24)])


def test_loglikelihood_equals_hand_computation(tok, model):
    cases = [("Tom has", " 3 apples"), ("A shop sells 12", " pens. It sells 4"), ("太郎はりんごを", "3個"),
             ("Question: what is 7 plus 6? Answer: 13. Question: what is", " 9 minus 2?")]
    out = LMEngine(tok, batch_size=3).loglikelihood(model, [LoglikelihoodRequest(c, x) for c, x in cases])
    for (c, x), r in zip(cases, out, strict=True):
        whole, ctx = tok.encode(c + x), tok.encode(c)
        assert r.n_tokens == len(whole) - len(ctx)
        assert r.logprob == pytest.approx(reference_logprob(model, ctx, whole[len(ctx):]), abs=1e-5)


def test_trailing_context_whitespace_moves_to_continuation(tok, model):
    engine = LMEngine(tok)
    a, b = engine.loglikelihood(model, [LoglikelihoodRequest("Tom has ", "3 apples"),
                                        LoglikelihoodRequest("Tom has", " 3 apples")])
    ctx, whole = tok.encode("Tom has"), tok.encode("Tom has 3 apples")
    assert a.n_tokens == b.n_tokens == len(whole) - len(ctx)
    assert a.logprob == b.logprob == pytest.approx(reference_logprob(model, ctx, whole[len(ctx):]), abs=1e-5)


def test_empty_context_is_the_prefix_token(tok, model):
    r = LMEngine(tok).loglikelihood(model, [LoglikelihoodRequest("", "Tom has")])[0]
    cont = tok.encode("Tom has")
    assert r.n_tokens == len(cont)
    assert r.logprob == pytest.approx(reference_logprob(model, [tok.bos_token_id], cont), abs=1e-5)


def test_add_bos_prepends_once(tok, model):
    engine = LMEngine(tok, add_bos=True)
    assert not LMEngine(tok).add_bos and engine.add_bos
    g1, g2 = engine.generate(model, [GenerateRequest("Tom has", (), 2),
                                     GenerateRequest(tok.bos_token + "Tom has", (), 2)])
    assert g1.n_prompt_tokens == g2.n_prompt_tokens == len(tok.encode("Tom has")) + 1
    assert list(g1.token_ids) == reference_greedy(model, [tok.bos_token_id, *tok.encode("Tom has")], 2)
    r = engine.loglikelihood(model, [LoglikelihoodRequest("Tom has", " 3 apples")])[0]
    ctx, whole = tok.encode("Tom has"), tok.encode("Tom has 3 apples")
    want = reference_logprob(model, [tok.bos_token_id, *ctx], whole[len(ctx):])
    assert r.logprob == pytest.approx(want, abs=1e-5)


def _greedy_case(tok, model):
    """A context whose two greedy tokens decode to text that re-encodes to exactly those tokens, and a
    continuation that starts with the first greedy token, then leaves the greedy path."""
    for c in PROMPTS + [p + " " for p in PROMPTS]:
        ctx = tok.encode(c)
        greedy = reference_greedy(model, ctx, 2)
        text = tok.decode(greedy)
        if tok.encode(c + text)[len(ctx):] != greedy:
            continue
        first = tok.decode(greedy[:1])
        for other in ("X", "Q", "z", " 13", "。"):
            cont = tok.encode(c + first + other)[len(ctx):]
            if cont[:1] == greedy[:1] and cont[1:2] != greedy[1:2]:
                return c, text, first + other
    raise AssertionError("no greedy test case in PROMPTS for this model")


def test_is_greedy(tok, model):
    context, greedy_text, off_path = _greedy_case(tok, model)
    out = LMEngine(tok).loglikelihood(model, [LoglikelihoodRequest(context, greedy_text),
                                              LoglikelihoodRequest(context, off_path),
                                              LoglikelihoodRequest(context, greedy_text + off_path)])
    assert [r.is_greedy for r in out] == [True, False, False]
    assert out[0].n_tokens == 2


def test_loglikelihood_left_truncation(tok, model):
    c, x = " ".join(PROMPTS[:4]), " The answer is 8."
    r = LMEngine(tok, max_length=12).loglikelihood(model, [LoglikelihoodRequest(c, x)])[0]
    ctx, whole = tok.encode(c), tok.encode(c + x)
    cont = whole[len(ctx):]
    window = whole[-13:]
    assert r.logprob == pytest.approx(reference_logprob(model, window[:13 - len(cont)], cont), abs=1e-5)
    with pytest.raises(ValueError, match="exceeds max_length"):
        LMEngine(tok, max_length=3).loglikelihood(model, [LoglikelihoodRequest(c, x)])


def test_results_follow_input_order(tok, model):
    gen = [GenerateRequest(p, (), 3) for p in PROMPTS]
    ll = [LoglikelihoodRequest(p, x) for p in PROMPTS for x in (" The answer is 8.", "8")]
    engine = LMEngine(tok, batch_size=2)
    g0, l0 = engine.generate(model, gen), engine.loglikelihood(model, ll)
    for seed in (0, 1):
        perm = list(range(len(ll)))
        random.Random(seed).shuffle(perm)
        g = engine.generate(model, [gen[i] for i in perm if i < len(gen)])
        assert [x.token_ids for x in g] == [g0[i].token_ids for i in perm if i < len(gen)]
        lo = engine.loglikelihood(model, [ll[i] for i in perm] + [ll[perm[0]]])
        assert [x.logprob for x in lo] == pytest.approx([l0[i].logprob for i in perm + perm[:1]], abs=1e-5)
    alone = [LMEngine(tok, batch_size=1).loglikelihood(model, [r])[0].logprob for r in ll]
    assert [x.logprob for x in l0] == pytest.approx(alone, abs=1e-5)


class CountingTokenizer:
    """A tokenizer proxy that counts ``encode`` calls."""

    def __init__(self, inner):
        self.inner, self.encodes = inner, 0

    def encode(self, *args, **kwargs):
        self.encodes += 1
        return self.inner.encode(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_tokenisation_is_cached_across_models(tok, model, other):
    counting = CountingTokenizer(tok)
    engine = LMEngine(counting, batch_size=4)
    gen = [GenerateRequest(p, ("。",), 4) for p in PROMPTS]
    ll = [LoglikelihoodRequest("Tom has", f" {n} apples") for n in range(5)]
    a = (engine.generate(model, gen), engine.loglikelihood(model, ll))
    first = counting.encodes
    assert first >= len(gen) + 2 * len(ll)
    b = (engine.generate(other, list(reversed(gen))), engine.loglikelihood(other, ll))
    assert counting.encodes == first  # no tokenisation for the second candidate
    assert [x.logprob for x in a[1]] != [x.logprob for x in b[1]]  # yet the new model was used
    assert len(engine.tokens) == len(gen) + len(ll)


def test_nan_logits_raise_non_finite_error(tok):
    broken = tiny_llama(tiny_llama_config(tok), seed=5, std=0.2)
    with torch.no_grad():
        broken.lm_head.weight[7, 0] = float("nan")
    engine = LMEngine(tok)
    with pytest.raises(NonFiniteError, match="non-finite logits"):
        engine.generate(broken, [GenerateRequest("Tom has", (), 3)])
    with pytest.raises(NonFiniteError, match="non-finite logits"):
        engine.loglikelihood(broken, [LoglikelihoodRequest("Tom has", " 3 apples")])


class PoisonedLogits(torch.nn.Module):
    """Wraps a causal LM and sets chosen logits to NaN: ``where(call, input_ids)`` picks them."""

    def __init__(self, inner, where):
        super().__init__()
        self.inner, self.where, self.calls = inner, where, 0

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        index = self.where(self.calls, kwargs["input_ids"])
        if index is not None:
            out.logits[index] = float("nan")
        self.calls += 1
        return out


def test_nan_mid_generation_fails_but_nan_at_padding_is_never_read(tok, model):
    reqs = [GenerateRequest(PROMPTS[0], (), 5), GenerateRequest("A", (), 5)]
    engine = LMEngine(tok, batch_size=2)
    want = engine.generate(model, reqs)
    third_step = PoisonedLogits(model, lambda call, ids: (1, -1) if call == 2 else None)
    with pytest.raises(NonFiniteError, match="generation step 2"):
        engine.generate(third_step, reqs)
    # the short prompt is left-padded: its first position is padding in the first call
    padding = PoisonedLogits(model, lambda call, ids: (1, 0) if call == 0 else None)
    assert [g.token_ids for g in engine.generate(padding, reqs)] == [g.token_ids for g in want]
    lls = [LoglikelihoodRequest(PROMPTS[0], " 8"), LoglikelihoodRequest("A", " 8")]
    right_pad = PoisonedLogits(model, lambda call, ids: (1, ids.shape[1] - 1))  # row 1 is right-padded
    assert engine.loglikelihood(right_pad, lls) == engine.loglikelihood(model, lls)


def test_requests_validate_and_records_are_json(tok, model):
    assert GenerateRequest("x", "\n").stop == ("\n",)
    with pytest.raises(ValueError, match="non-empty"):
        GenerateRequest("x", ("",))
    with pytest.raises(ValueError, match="at least 1"):
        GenerateRequest("x", (), 0)
    with pytest.raises(ValueError, match="non-empty"):
        LoglikelihoodRequest("x", "")
    assert prompt_hash("答え") == hashlib.sha256("答え".encode()).hexdigest()
    req = GenerateRequest("Tom has", ("\n",), 3)
    rec = record(req, LMEngine(tok).generate(model, [req])[0])
    assert rec["prompt_sha256"] == prompt_hash("Tom has") and rec["n_new_tokens"] == 3
    lreq = LoglikelihoodRequest("Tom has", " 3")
    lrec = record(lreq, LMEngine(tok).loglikelihood(model, [lreq])[0])
    n = len(tok.encode("Tom has 3")) - len(tok.encode("Tom has"))
    assert json.loads(json.dumps([rec, lrec]))[1]["n_tokens"] == n and lrec["kind"] == "loglikelihood"


def test_progress_bar_only_inside_a_progress_block(tok, model, capsys):
    """evobench eval shows a bar per batch of requests; a search (no block) shows none."""
    from evobench.scoring.progress import progress

    engine = LMEngine(tok, batch_size=2)
    reqs = [LoglikelihoodRequest(f"a{i}", " b") for i in range(5)]
    engine.loglikelihood(model, reqs)
    assert capsys.readouterr().err == ""
    with progress("jp-lmeh-jcqa"):
        engine.loglikelihood(model, reqs)
        engine.generate(model, [GenerateRequest("a", max_new_tokens=2)])
    err = capsys.readouterr().err
    assert "jp-lmeh-jcqa: log-likelihood" in err and "0/5 [" in err  # 5 requests
    assert "jp-lmeh-jcqa: generate" in err and "0/1 [" in err
    engine.loglikelihood(model, reqs)
    assert capsys.readouterr().err == ""  # the block is over
