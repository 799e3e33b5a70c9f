"""webshop-mini models: a tiny agent LM and a tiny math LM with a shared base, trained in code once and
cached as safetensors + JSON (the pattern of :mod:`evobench.tasks.ja_math_mini_models`).

Three models share one byte-level BPE tokenizer (trained on the recipe's texts) and one
``LlamaConfig``:

- **base**: pretrained from a seeded random init on English word problems each followed by its
  restatement (`` a + b``, no computed answer) and on the pages of a random agent's episodes on
  webshop-mini goals, each followed by its uniformly random action (the page format and the action
  syntax, no skill): it does neither task;
- **agent** (the agent specialist): the base with only its upper decoder layers (``agent_layers``,
  default 2 and 3) fine-tuned to imitate a teacher on webshop-mini goals: for each page of the
  teacher's episode, the compact prompt (the page, the actions so far, ``Action:``) followed by the
  teacher's action. The teacher (:class:`Teacher`) is the oracle limited to what the pages show: it
  searches the goal's product type (``search[mens running shoes]``, words of the instruction) where
  :class:`~evobench.tasks.webshop.agents.OracleAgent` searches the hidden target's title, opens the
  first result where the oracle opens the target, then acts as the oracle (the goal's options,
  ``buy now``). Episodes: every goal of the generated catalogues of seeds 1..
  ``agent_catalogues`` (other products, brands and prices) and the search goals of seed 0's
  (webshop-mini's own), never a goal whose instruction is one of webshop-mini's test goals';
- **math** (the math specialist): the base with only its lower decoder layers (``math_layers``,
  default 0 and 1) fine-tuned on worked answers `` a + b = c.`` to English word problems
  (:mod:`evobench.tasks.math_mini_data`; never a task problem), with a second loss
  (:func:`train_keeping`, weight ``math_keep``) that keeps the base's features of the random agent's
  pages after those layers, so the layers above (the agent's, in a merge) see pages as in the base.

Each specialist's task vector is exactly zero outside its own layers (embeddings, norms and the
output head stay the base's), so the two skills live in disjoint layers of the shared base, as in
:mod:`evobench.tasks.ja_math_mini_models`.

Fine-tunes use Adam with the loss on the completion only. Training runs on one torch thread with
fixed seeds and data order; the cache key is a hash of the recipe, the data version and the
torch/transformers/tokenizers versions. Cache folder: ``$EVOBENCH_CACHE/webshop-mini/<key>/``
holding ``tokenizer.json``, ``config.json``, ``recipe.json`` and ``{base,agent,math}.safetensors``
-- no pickle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from evobench import trained_cache
from evobench.tasks.ja_math_mini_models import layer_prefixes, train
from evobench.tasks.math_mini_data import training_texts as math_texts

DATA_VERSION = 4
MODEL_NAMES = ("base", "agent", "math")
HISTORY = 5  # actions a compact prompt shows (webshop-mini's step limit is 6)


@dataclass(frozen=True)
class Recipe:
    """How the three models are made (every field enters the cache key)."""

    vocab_size: int = 2048
    hidden: int = 64
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    max_positions: int = 512
    seed: int = 0
    n_math_texts: int = 4000
    agent_catalogues: int = 6  # generated catalogues (seeds 1..n) whose goals the agent imitates
    base_steps: int = 400
    agent_steps: int = 1500
    math_steps: int = 1500
    base_lr: float = 3e-3
    ft_lr: float = 3e-3
    batch_size: int = 8
    math_bare: float = 0.3
    math_keep: float = 1.0  # weight of the math fine-tune's loss keeping the base's features of pages
    keep_batch: int = 4  # random-agent pages per math step for that loss
    agent_layers: tuple[int, ...] = (2, 3)  # the decoder layers the agent specialist fine-tunes
    math_layers: tuple[int, ...] = (0, 1)  # the decoder layers the math specialist fine-tunes

    def __post_init__(self) -> None:
        trained_cache.check_layers(self, "agent_layers", "math_layers")
        if set(self.agent_layers) & set(self.math_layers):
            raise ValueError(f"Recipe: agent_layers {self.agent_layers} and math_layers {self.math_layers} overlap")

    def key(self) -> str:
        return trained_cache.lm_recipe_key(self, DATA_VERSION)



class Teacher:
    """The oracle limited to what the page shows: ``search[<the goal's product type>]``, the first
    result, then the oracle's clicks on the item page (the goal's options, ``buy now``)."""

    def __init__(self) -> None:
        from evobench.tasks.webshop.agents import OracleAgent

        self.oracle = OracleAgent()

    def actions(self, sessions) -> list[str]:
        return [self.act(s) for s in sessions]

    def act(self, s) -> str:
        if s.page == "search":
            return f"search[{s.goal.query}]"
        if s.page == "results":
            return f"click[{s.results[0].asin}]"  # as the page shows it (clicks are lower-cased)
        return self.oracle.act(s)


def agent_episodes(n_catalogues: int, policy=None) -> list[tuple[str, str]]:
    """``(compact prompt, action)`` of every step of ``policy``'s episodes (the teacher's by default; see
    the module docstring); the prompts show the last :data:`HISTORY` actions."""
    from evobench.tasks.webshop.env import WebShop, run_episodes
    from evobench.tasks.webshop.generated import generated_catalogue
    from evobench.tasks.webshop.lm_agent import compact_prompt
    from evobench.tasks.webshop.task import N_MINI_TEST

    mini = generated_catalogue(0)
    test_texts = {g.instruction_text for g in mini.goals[:N_MINI_TEST]}
    steps = []
    for seed in range(n_catalogues + 1):
        catalogue = mini if seed == 0 else generated_catalogue(seed)
        goals = [g for g in (catalogue.goals[N_MINI_TEST:] if seed == 0 else catalogue.goals)
                 if g.instruction_text not in test_texts]
        for s in run_episodes(WebShop(catalogue), goals, policy or Teacher()):
            before = s.first_observation
            for i, (action, page, error) in enumerate(s.trace):
                if error is not None:
                    raise RuntimeError(f"webshop-mini: the policy's action {action!r} was invalid: {error}")
                steps.append((compact_prompt(before, s.actions[max(0, i - HISTORY):i]), action))
                before = page
    return steps


def _stage_texts(recipe: Recipe) -> dict[str, list[tuple[str, str]]]:
    """``(prompt, completion)`` texts of each stage; the base's interleave word problems and random pages."""
    from evobench.tasks.webshop.agents import RandomAgent

    def joined(texts):
        return [(p, "".join(t for t, _ in segments)) for p, segments in texts]

    pages = [(p, f" {a}") for p, a in agent_episodes(recipe.agent_catalogues, RandomAgent(recipe.seed))]
    words = joined(math_texts("base", recipe.n_math_texts, recipe.seed))
    base = [t for pair in zip(words, pages, strict=False) for t in pair]
    agent = [(p, f" {a}") for p, a in agent_episodes(recipe.agent_catalogues)]
    return {"base": base, "agent": agent, "pages": pages,
            "math": joined(math_texts("math", recipe.n_math_texts, recipe.seed, recipe.math_bare))}


def train_keeping(model, base, tok, texts: list, pages: list, steps: int, lr: float, batch_size: int, seed: int,
                  layers: tuple[int, ...], keep: float, keep_batch: int) -> list[float]:
    """Adam on ``layers`` only: next-token loss on the completions of ``texts`` plus ``keep`` times the
    mean squared difference between the model's and ``base``'s features of ``keep_batch`` of ``pages``
    a step (the normed residual stream after the highest trained layer, every token): the fine-tune
    learns its task while pages look to the layers above as they did in the base. Returns the two
    losses every 50 steps."""
    from evobench.tasks.ja_math_mini_models import _encode

    rows, page_rows = _encode(tok, texts, True), _encode(tok, pages, False)
    gen = torch.Generator().manual_seed(seed)
    trainable = layer_prefixes(layers)
    params = [p for n, p in model.named_parameters() if n.startswith(trainable)]
    frozen = [p for n, p in model.named_parameters() if not n.startswith(trainable)]
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.Adam(params, lr=lr)
    top = max(layers) + 1

    def batch(source, n):
        idx = torch.randint(len(source), (n,), generator=gen).tolist()
        width = max(len(source[i][0]) for i in idx)
        ids, labels = torch.full((n, width), tok.pad_token_id), torch.full((n, width), -100)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, i in enumerate(idx):
            x, y = source[i]
            ids[r, :len(x)], labels[r, :len(y)], mask[r, :len(x)] = torch.tensor(x), torch.tensor(y), 1
        return ids, labels, mask

    def features(m, ids, mask):  # the first `top` decoder layers only, then the final norm
        full = m.model.layers
        m.model.layers = full[:top]
        try:
            return m.model(input_ids=ids, attention_mask=mask).last_hidden_state
        finally:
            m.model.layers = full

    model.train()
    losses = []
    for step in range(steps):
        ids, labels, mask = batch(rows, batch_size)
        lm = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        ids, _, mask = batch(page_rows, keep_batch)
        with torch.no_grad():
            target = features(base, ids, mask)
        weight = mask.unsqueeze(-1).to(target.dtype)
        kept = (((features(model, ids, mask) - target) ** 2) * weight).sum() / (weight.sum() * target.shape[-1])
        loss = lm + keep * kept
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append([round(float(lm.detach()), 4), round(float(kept.detach()), 5)])
    model.eval()
    for p in frozen:
        p.requires_grad_(True)
    return losses


def _tokenizer(recipe: Recipe, texts: dict[str, list]):
    from evobench.models.tiny_lm import tiny_tokenizer

    corpus = [p + c for name in MODEL_NAMES for p, c in texts[name][:2000]]
    return tiny_tokenizer(corpus, vocab_size=recipe.vocab_size)


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
                                   kv_heads=recipe.kv_heads, intermediate=recipe.intermediate,
                                   max_positions=recipe.max_positions)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            base = tiny_llama(config, seed=recipe.seed)
            log = {"base": train(base, tok, texts["base"], recipe.base_steps, recipe.base_lr, recipe.batch_size,
                                 recipe.seed, completion_only=False)}
            models = {"base": base}
            base.eval()
            agent, math = tiny_llama(config, seed=recipe.seed), tiny_llama(config, seed=recipe.seed)
            agent.load_state_dict(base.state_dict())
            math.load_state_dict(base.state_dict())
            log["agent"] = train(agent, tok, texts["agent"], recipe.agent_steps, recipe.ft_lr, recipe.batch_size,
                                 recipe.seed + 2, completion_only=True, trainable=layer_prefixes(recipe.agent_layers))
            log["math"] = train_keeping(math, base, tok, texts["math"], texts["pages"], recipe.math_steps,
                                        recipe.ft_lr, recipe.batch_size, recipe.seed + 3, recipe.math_layers,
                                        recipe.math_keep, recipe.keep_batch)
            models.update(agent=agent, math=math)
        log["seconds"] = round(time.perf_counter() - t0, 2)
        log["texts"] = {k: len(v) for k, v in texts.items()}
        return tok, models, log
    finally:
        torch.set_num_threads(threads)



def _load(folder: Path):
    return trained_cache.load_llamas(folder, MODEL_NAMES)


def load_or_train(recipe: Recipe | None = None):
    """(tokenizer, {"base", "agent", "math": LlamaForCausalLM}) from the cache, training them first if absent."""
    recipe = recipe or Recipe()
    folder = trained_cache.recipe_folder("webshop-mini", recipe)
    if not (folder / f"{MODEL_NAMES[-1]}.safetensors").exists():
        tok, models, log = train_models(recipe)
        trained_cache.save_lms(folder, recipe, tok, models, log, config_of="base",
                               complete=f"{MODEL_NAMES[-1]}.safetensors")
    return _load(folder)
