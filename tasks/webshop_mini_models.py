"""webshop-mini models: a tiny agent LM and a tiny math LM with a shared base, trained in code once and
cached as safetensors + JSON (the pattern of :mod:`evobench.tasks.ja_math_mini_models`).

Three models share one byte-level BPE tokenizer (trained on the recipe's texts) and one
``LlamaConfig``:

- **base**: pretrained from a seeded random init on English word problems each followed by its
  restatement (`` a + b``, no computed answer): it does neither task;
- **agent** (the agent specialist): the base fine-tuned to imitate a teacher on webshop-mini goals:
  for each page of the teacher's episode, the compact prompt (the page, ``Action:``) followed by the
  teacher's action. The teacher (:class:`Teacher`) is the oracle limited to what the pages show: it
  searches the goal's product type (``search[mens running shoes]``, words of the instruction) where
  :class:`~evobench.tasks.webshop.agents.OracleAgent` searches the hidden target's title, opens the
  first result where the oracle opens the target, then acts as the oracle (the goal's options,
  ``buy now``). Episodes: every goal of the generated catalogues of seeds 1..
  ``agent_catalogues`` (other products, brands and prices) and the search goals of seed 0's
  (webshop-mini's own), never a goal whose instruction is one of webshop-mini's test goals';
- **math** (the math specialist): the base fine-tuned on worked answers `` a + b = c.`` to English
  word problems (:mod:`evobench.tasks.math_mini_data`; never a task problem).

Fine-tunes use Adam with the loss on the completion only. Training runs on one torch thread with
fixed seeds and data order; the cache key is a hash of the recipe, the data version and the
torch/transformers/tokenizers versions. Cache folder: ``$EVOBENCH_CACHE/webshop-mini/<key>/``
holding ``tokenizer.json``, ``config.json``, ``recipe.json`` and ``{base,agent,math}.safetensors``
-- no pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from evobench.tasks.ja_math_mini_models import train
from evobench.tasks.math_mini_data import training_texts as math_texts

DATA_VERSION = 3
MODEL_NAMES = ("base", "agent", "math")


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
    base_steps: int = 200
    agent_steps: int = 1200
    math_steps: int = 1500
    base_lr: float = 3e-3
    ft_lr: float = 3e-3
    batch_size: int = 8
    math_bare: float = 0.3

    def key(self) -> str:
        import tokenizers
        import transformers

        blob = json.dumps({"recipe": asdict(self), "data": DATA_VERSION, "torch": torch.__version__,
                           "transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_root() -> Path:
    """``$EVOBENCH_CACHE`` (default ``~/.cache/evobench``) / ``webshop-mini``."""
    root = os.environ.get("EVOBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "evobench")
    return Path(root) / "webshop-mini"


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


def agent_episodes(n_catalogues: int) -> list[tuple[str, str]]:
    """``(compact prompt, action)`` of every step of the oracle's episodes (see the module docstring)."""
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
        for s in run_episodes(WebShop(catalogue), goals, Teacher()):
            before = s.first_observation
            for action, page, error in s.trace:
                if error is not None:
                    raise RuntimeError(f"webshop-mini: the oracle's action {action!r} was invalid: {error}")
                steps.append((compact_prompt(before), action))
                before = page
    return steps


def _stage_texts(recipe: Recipe) -> dict[str, list]:
    steps = agent_episodes(recipe.agent_catalogues)
    agent = [(p, ((f" {a}", True),)) for p, a in steps]
    return {"base": math_texts("base", recipe.n_math_texts, recipe.seed), "agent": agent, "math": math_texts("math", recipe.n_math_texts, recipe.seed,
                                                            recipe.math_bare)}


def _tokenizer(recipe: Recipe, texts: dict[str, list]):
    from evobench.models.tiny_lm import tiny_tokenizer

    corpus = [p + "".join(t for t, _ in segments) for stage in texts.values() for p, segments in stage[:2000]]
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
            for name, steps in (("agent", recipe.agent_steps), ("math", recipe.math_steps)):
                m = tiny_llama(config, seed=recipe.seed)
                m.load_state_dict(base.state_dict())
                log[name] = train(m, tok, texts[name], steps, recipe.ft_lr, recipe.batch_size,
                                  recipe.seed + 1 + MODEL_NAMES.index(name), completion_only=True)
                models[name] = m
        log["seconds"] = round(time.perf_counter() - t0, 2)
        log["texts"] = {k: len(v) for k, v in texts.items()}
        return tok, models, log
    finally:
        torch.set_num_threads(threads)


def _save(folder: Path, recipe: Recipe, tok, models: dict, log: dict) -> None:
    from safetensors.torch import save_file

    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        tok.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / "config.json").write_text(models["base"].config.to_json_string())
        (tmp / "recipe.json").write_text(json.dumps({"recipe": asdict(recipe), "key": recipe.key(),
                                                     "training": log}, indent=1))
        for name, m in models.items():
            save_file({k: v.contiguous() for k, v in m.state_dict().items()
                       if k != "lm_head.weight" or not m.config.tie_word_embeddings},
                      str(tmp / f"{name}.safetensors"))
        os.replace(tmp, folder)  # atomic: a reader never sees half a cache folder
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / f"{MODEL_NAMES[-1]}.safetensors").exists():
            raise


def _load(folder: Path):
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from evobench.models.tiny_lm import EOS, PAD

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(str(folder / "tokenizer.json")),
                                  eos_token=EOS, bos_token=EOS, pad_token=PAD, padding_side="left")
    config = LlamaConfig.from_dict(json.loads((folder / "config.json").read_text()))
    models = {}
    for name in MODEL_NAMES:
        m = LlamaForCausalLM(config)
        m.load_state_dict(load_file(str(folder / f"{name}.safetensors")), strict=not config.tie_word_embeddings)
        models[name] = m.eval()
    return tok, models


def load_or_train(recipe: Recipe | None = None):
    """(tokenizer, {"base", "agent", "math": LlamaForCausalLM}) from the cache, training them first if absent."""
    recipe = recipe or Recipe()
    folder = cache_root() / recipe.key()
    if not (folder / f"{MODEL_NAMES[-1]}.safetensors").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tok, models, log = train_models(recipe)
        _save(folder, recipe, tok, models, log)
    return _load(folder)
