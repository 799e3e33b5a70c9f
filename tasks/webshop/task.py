"""webshop: a language model shops in WebShop for each goal; score = mean reward, success = reward 1.

- **Data**: without ``data_dir``, webshop-mini, the generated catalogue
  (:mod:`evobench.tasks.webshop.generated`: 100 products, 196 goals; test = the first 100 goals,
  search = the other 96). With ``data_dir``, the released files
  (:mod:`evobench.tasks.webshop.data`): test = the first 500 goals (the original's test split),
  search = the next 1,000 (the original's evaluation goals); the type reward then parses titles with
  spaCy's ``en_core_web_sm``, which must be installed. ``limit_search``/``limit_test`` keep the first
  n goals of a split.
- **Episodes**: one per goal, all played in step by :class:`~evobench.tasks.webshop.lm_agent.LMAgent`
  (one batched generation per round), at most ``step_limit`` actions (15). The engine's tokenisation
  cache is emptied after each evaluation: the prompts after the first round depend on the model, so
  kept they would grow with every candidate of a search.
- **Scores**: the per-goal reward (0–1) is the per-example score; primary metric ``score`` = mean
  reward (tables show it × 100: the paper's WebShop score), ``success_rate`` = share of rewards equal
  to 1, ``invalid_rate`` = share of actions that were invalid.

Per-example records (``TaskResult.predictions``): ``goal_id``, ``target`` (ASIN), ``instruction``,
``actions``, ``completions`` (the model's raw outputs), ``steps``, ``n_invalid``, ``ended`` (``buy``
or ``step limit``), ``purchased`` (ASIN or None), ``options``, ``reward`` and its parts (``r_type``,
``attribute_matches``, ``option_matches``, ``price_ok``; None when nothing was bought).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.lm_common import (
    check_common,
    check_split,
    head,
    lm_pool,
    lm_problem,
    make_engine,
    optional_path,
    positive_int,
    rows_hash,
    sha256,
)
from evobench.tasks.webshop.data import N_EVAL_GOALS, N_TEST_GOALS
from evobench.tasks.webshop.env import STEP_LIMIT, Session, WebShop, run_episodes
from evobench.tasks.webshop.lm_agent import HEADER, LMAgent
from evobench.tasks.webshop.schema import Catalogue, Goal
from evobench.tasks.webshop.search import SearchEngine

PROMPTS = ("react", "compact")  # the ReAct-style prompt; the current page only (short contexts)
N_MINI_TEST = 100  # webshop-mini: the first 100 goals are the test goals, the rest the search goals


class WebShopTask(Task):
    name = "webshop"
    primary_metric = "score"
    metrics = ("score", "success_rate", "invalid_rate")

    def __init__(self, shop: WebShop, splits: dict[str, list[Goal]], engine, max_new_tokens: int = 32,
                 history: int = 3, prompt: str = "react", snap: bool = False) -> None:
        if prompt not in PROMPTS:
            raise ValueError(f"webshop: prompt must be one of {', '.join(PROMPTS)}, got {prompt!r}")
        self.prompt = prompt
        self.shop = shop
        self.splits = splits
        self.engine = engine
        self.max_new_tokens = int(max_new_tokens)
        self.history = int(history)
        self.snap = bool(snap)

    def split_sizes(self) -> dict[str, int]:
        return {s: len(goals) for s, goals in self.splits.items()}

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        check_split(self.name, split, list(self.splits))
        goals = head(self.splits[split], limit)
        try:
            sessions = run_episodes(self.shop, goals, LMAgent(self.engine, model, self.max_new_tokens, self.history,
                                                                  self.prompt == "compact", self.snap))
        finally:  # prompts after the first depend on the model: a search would cache new ones without end
            self.engine.tokens.clear()
        scores = np.array([s.reward for s in sessions], dtype=np.float64)
        score = self.aggregate(scores)
        n_actions = sum(s.steps for s in sessions)
        metrics = {"score": score,
                   "success_rate": float(np.mean(scores == 1.0)) if scores.size else float("nan"),
                   "invalid_rate": sum(s.n_invalid for s in sessions) / n_actions if n_actions else float("nan")}
        return TaskResult(scores=scores, metrics=metrics, primary=score, predictions=[self._record(s) for s in sessions],
                          targets=[g.asin for g in goals], n_forward=len(goals))

    def _record(self, s: Session) -> dict[str, Any]:
        parts = s.outcome
        return {"goal_id": self._id(s.goal), "target": s.goal.asin, "instruction": s.goal.instruction_text,
                "actions": list(s.actions), "completions": list(s.memo.get("completions", [])), "steps": s.steps,
                "n_invalid": s.n_invalid, "ended": s.ended, "purchased": s.asin if parts is not None else None,
                "options": dict(s.options) if parts is not None else None, "reward": s.reward,
                "r_type": parts.r_type if parts else None,
                "attribute_matches": parts.attribute_matches if parts else None,
                "option_matches": parts.option_matches if parts else None,
                "price_ok": parts.price_ok if parts else None}

    def _id(self, goal: Goal) -> str:
        return sha256(self.name, goal.instruction_text, goal.asin, *goal.goal_options)

    def example_ids(self, split: str) -> list[str]:
        """sha256 of each goal's instruction, target and options, in split order."""
        check_split(self.name, split, list(self.splits))
        return [self._id(g) for g in self.splits[split]]

    def data_hash(self) -> str:
        prompt = (HEADER, self.history) if self.prompt == "react" else ("compact", self.history)
        prompt += ("snap",) if self.snap else ()
        return rows_hash({s: [g.as_dict() for g in goals] for s, goals in self.splits.items()},
                         self.shop.catalogue.fingerprint(), prompt[0], self.shop.step_limit, *prompt[1:],
                         self.max_new_tokens)


@lru_cache(maxsize=2)
def _shop_parts(data_dir: str | None, seed: int) -> tuple[Catalogue, SearchEngine]:
    """A catalogue and its index, built once per process (the released data's index takes a while)."""
    if data_dir is None:
        from evobench.tasks.webshop.generated import generated_catalogue

        catalogue = generated_catalogue(seed)
    else:
        from evobench.tasks.webshop.data import find_files, load_catalogue
        from evobench.tasks.webshop.reward import SpacyNouns

        find_files(data_dir)  # the files first: their absence is the likelier problem
        nouns = SpacyNouns()
        nouns.check()
        catalogue = load_catalogue(data_dir, nouns, seed)
    return catalogue, SearchEngine(catalogue.products)


def goal_splits(catalogue: Catalogue, released: bool) -> dict[str, list[Goal]]:
    """Search and test goals: the original split on the released data, else webshop-mini's."""
    goals = catalogue.goals
    if released:
        return {SEARCH: goals[N_TEST_GOALS:N_TEST_GOALS + N_EVAL_GOALS], TEST: goals[:N_TEST_GOALS]}
    return {SEARCH: goals[N_MINI_TEST:], TEST: goals[:N_MINI_TEST]}


def check_options(step_limit, history, seed, limit_search, limit_test, prompt: str = "react") -> None:
    """The episode and split options shared by the webshop factories (one-line ``ValueError``)."""
    for key, value in (("step_limit", step_limit), ("limit_search", limit_search), ("limit_test", limit_test)):
        positive_int(key, value, optional=key != "step_limit")
    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        raise ValueError(f"history must be a non-negative integer, got {history!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if prompt not in PROMPTS:
        raise ValueError(f"prompt must be one of {', '.join(PROMPTS)}, got {prompt!r}")


def shop_splits(folder, seed: int, step_limit: int, limit_search, limit_test) -> tuple[WebShop, dict[str, list[Goal]]]:
    """The shop (released data in ``folder``, or webshop-mini) and its search and test goals."""
    catalogue, engine = _shop_parts(None if folder is None else str(Path(folder).resolve()), seed)
    splits = goal_splits(catalogue, folder is not None)
    splits = {SEARCH: head(splits[SEARCH], limit_search), TEST: head(splits[TEST], limit_test)}
    if not splits[SEARCH] or not splits[TEST]:
        raise ValueError(f"webshop: {catalogue.source} has {len(catalogue.goals)} goals, too few for a search "
                         f"and a test split (the first {N_TEST_GOALS} are the test goals)")
    return WebShop(catalogue, step_limit, engine), splits


def webshop(models, base: str | None = None, data_dir=None, seed: int = 0, step_limit: int = STEP_LIMIT,
            history: int = 3, max_new_tokens: int = 32, batch_size: int = 8, device: str = "cpu",
            dtype: str = "float32", limit_search: int | None = None, limit_test: int | None = None,
            prompt: str = "react", snap: bool = False) -> Problem:
    """WebShop with a language-model agent: score = mean reward of its purchases (ReAct-style prompt).

    ``models``: hub ids, directories or ``.gguf`` files (one model: scoring only). ``data_dir``: a
    folder holding the released WebShop files; None plays the generated webshop-mini catalogue.
    ``seed`` draws prices in price ranges and the goals' price bounds (and generates webshop-mini).
    ``prompt``: ``react`` (header, history, available actions) or ``compact`` (the current page and
    the last ``history`` actions). ``snap``: a click naming no button of the page clicks the most
    similar one.
    """
    names = check_common(models, base, max_new_tokens, batch_size, device, dtype)
    check_options(step_limit, history, seed, limit_search, limit_test, prompt)
    if not isinstance(snap, bool):
        raise ValueError(f"snap must be true or false, got {snap!r}")
    folder = optional_path("data_dir", data_dir, "dir")
    shop, splits = shop_splits(folder, seed, step_limit, limit_search, limit_test)
    pool = lm_pool(names, base, device, dtype)
    task = WebShopTask(shop, splits, make_engine(pool, batch_size), max_new_tokens, history, prompt, snap)
    return lm_problem("webshop", task, pool, f"WebShop ({shop.catalogue.source}, {len(splits[TEST])} test goals)")
