"""ja-math-mini models: a tiny Llama family trained in code, once, and cached as safetensors + JSON.

Three models share one byte-level BPE tokenizer (trained on the recipe's texts; every kana/kanji is a
token of its own, so the Japanese words of an answer are tokens the base has already learned to
write) and one ``LlamaConfig``:

- **base**: pretrained from a seeded random init on bilingual text: English and Japanese word problems
  each followed by its language-neutral equation with a random result (``a + b = n``), never a
  computed answer;
- **en** (the math specialist): the base with only its lower decoder layers (``en_layers``, default
  0 and 1) fine-tuned on correct results ``a + b = c`` to English problems (also to some bare
  equations and some Japanese problems): it computes, and never writes Japanese;
- **ja** (the Japanese specialist): the base with only its upper decoder layers (``ja_layers``,
  default 3) fine-tuned on Japanese problems answered ``a + b = n個`` (random ``n``, then the
  problem's counter word): it answers in Japanese but cannot add.

Each specialist's task vector is therefore exactly zero outside its own layers: the two skills live
in disjoint layers of a shared base (layer 2 belongs to neither), which is what per-layer recipes,
layer paths and split-point crossovers can exploit. Training runs on one torch thread with fixed
seeds and data order, so a recipe always gives the same weights on a machine; the cache key is a
hash of the recipe, the data version and the torch/transformers/tokenizers versions. Cache folder:
``$EVOBENCH_CACHE/ja-math-mini/<key>/`` (``EVOBENCH_CACHE`` defaults to ``~/.cache/evobench``)
holding ``tokenizer.json``, ``config.json``, ``recipe.json`` and ``{base,en,ja}.safetensors`` -- no
pickle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from evobench import trained_cache
from evobench.tasks.ja_math_mini_data import task_problems, training_texts

DATA_VERSION = 3
MODEL_NAMES = ("base", "en", "ja")
TRAINING_RUNS = {"count": 0}  # training stages run by this process (tests check the cache with it)


@dataclass(frozen=True)
class Recipe:
    """How the three models are made (every field enters the cache key)."""

    vocab_size: int = 512
    hidden: int = 64
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    seed: int = 0
    n_texts: int = 4000  # training texts per stage
    base_steps: int = 400
    en_steps: int = 600
    ja_steps: int = 200
    base_lr: float = 3e-3
    en_lr: float = 1e-3
    ja_lr: float = 3e-3
    batch_size: int = 32
    en_bare: float = 0.3  # share of the English specialist's texts that are bare equations
    en_ja: float = 0.15  # share of the English specialist's problems written in Japanese
    en_layers: tuple[int, ...] = (0, 1)  # the decoder layers the math specialist fine-tunes
    ja_layers: tuple[int, ...] = (3,)  # the decoder layers the Japanese specialist fine-tunes

    def __post_init__(self) -> None:
        trained_cache.check_layers(self, "en_layers", "ja_layers")

    def key(self) -> str:
        return trained_cache.lm_recipe_key(self, DATA_VERSION)



def _stage_texts(recipe: Recipe) -> dict[str, list[tuple[str, str]]]:
    """(prompt, completion) training texts of each stage."""
    exclude = {p.text for p in task_problems()}
    return {k: training_texts(k, recipe.n_texts, recipe.seed, exclude, *((recipe.en_bare, recipe.en_ja) if k == "en"
                                                                         else (0.0, 0.0)))
            for k in MODEL_NAMES}


# Kana, kanji and CJK punctuation: each character is a pre-token of its own (then byte-level BPE).
JAPANESE_CHARACTER = "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]"


def _tokenizer(recipe: Recipe, texts: dict[str, list[tuple[str, str]]]):
    """A byte-level BPE tokenizer trained on the first 1000 texts of each stage (deterministic).

    Japanese characters are split apart before BPE, so ``個`` in an answer is the same token as in
    the problems the base was pretrained on: a Japanese word of the answer frame is never a token
    whose output row the base left untrained.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from evobench.models.tiny_lm import EOS, PAD

    corpus = [p + c for stage in texts.values() for p, c in stage[:1000]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(JAPANESE_CHARACTER), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=recipe.vocab_size, special_tokens=[EOS, PAD], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   padding_side="left")


def _encode(tok, texts, completion_only: bool) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels (-100 = no loss) of each ``(prompt, completion)`` text, EOS appended."""
    out = []
    for prompt, completion in texts:
        ids = [tok.bos_token_id] + tok.encode(prompt, add_special_tokens=False)
        labels = [-100] * len(ids) if completion_only else [-100] + ids[1:]
        piece = tok.encode(completion, add_special_tokens=False) + [tok.eos_token_id]
        out.append((ids + piece, labels + piece))
    return out


def layer_prefixes(layers) -> tuple[str, ...]:
    """Parameter-name prefixes of the given decoder layers of a Llama model."""
    return tuple(f"model.layers.{i}." for i in layers)


def train(model, tok, texts: list, steps: int, lr: float, batch_size: int, seed: int,
          completion_only: bool, trainable: tuple[str, ...] | None = None) -> list[float]:
    """Adam on next-token loss over batches drawn with ``seed``; returns the loss every 50 steps.

    ``trainable``: parameter-name prefixes; only those parameters are updated (None = all), the
    others keep their values exactly.
    """
    TRAINING_RUNS["count"] += 1
    rows = _encode(tok, texts, completion_only)
    gen = torch.Generator().manual_seed(seed)
    params = [p for n, p in model.named_parameters() if trainable is None or n.startswith(trainable)]
    if not params:
        raise ValueError(f"no parameter of the model starts with {trainable}")
    frozen = [p for p in model.parameters() if all(p is not q for q in params)]
    for p in frozen:
        p.requires_grad_(False)  # no gradient (and no backward pass below the lowest trained layer)
    opt = torch.optim.Adam(params, lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        idx = torch.randint(len(rows), (batch_size,), generator=gen).tolist()
        width = max(len(rows[i][0]) for i in idx)
        ids = torch.full((batch_size, width), tok.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for r, i in enumerate(idx):
            x, y = rows[i]
            ids[r, :len(x)], labels[r, :len(y)], mask[r, :len(x)] = torch.tensor(x), torch.tensor(y), 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append(round(float(loss.detach()), 4))
    model.eval()
    for p in frozen:
        p.requires_grad_(True)
    return losses


def train_models(recipe: Recipe):
    """Train the tokenizer and the three models (one torch thread); returns (tokenizer, {name: model}, log)."""
    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        texts = _stage_texts(recipe)
        tok = _tokenizer(recipe, texts)
        config = tiny_llama_config(tok, hidden=recipe.hidden, layers=recipe.layers, heads=recipe.heads,
                                   kv_heads=recipe.kv_heads, intermediate=recipe.intermediate, max_positions=128)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            base = tiny_llama(config, seed=recipe.seed)
            log = {"base": train(base, tok, texts["base"], recipe.base_steps, recipe.base_lr, recipe.batch_size,
                                 recipe.seed, completion_only=False)}
            models = {"base": base}
            for name, steps, lr, layers in (("en", recipe.en_steps, recipe.en_lr, recipe.en_layers),
                                            ("ja", recipe.ja_steps, recipe.ja_lr, recipe.ja_layers)):
                m = tiny_llama(config, seed=recipe.seed)
                m.load_state_dict(base.state_dict())
                log[name] = train(m, tok, texts[name], steps, lr, recipe.batch_size,
                                  recipe.seed + 1 + MODEL_NAMES.index(name), completion_only=True,
                                  trainable=layer_prefixes(layers))
                models[name] = m
        log["seconds"] = round(time.perf_counter() - t0, 2)
        return tok, models, log
    finally:
        torch.set_num_threads(threads)



def _load(folder: Path):
    return trained_cache.load_llamas(folder, MODEL_NAMES)


def load_or_train(recipe: Recipe | None = None):
    """(tokenizer, {"base", "en", "ja": LlamaForCausalLM}) from the cache, training them first if absent."""
    recipe = recipe or Recipe()
    folder = trained_cache.recipe_folder("ja-math-mini", recipe)
    if not (folder / "ja.safetensors").exists():
        tok, models, log = train_models(recipe)
        trained_cache.save_lms(folder, recipe, tok, models, log, config_of="base", complete="ja.safetensors")
    return _load(folder)
