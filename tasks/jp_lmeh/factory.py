"""Task factories of the JP-LMEH subtasks: option checks, data, then models (one line per bad option)."""

from __future__ import annotations

from collections.abc import Callable

from evobench.lmdata import DataUnavailableError
from evobench.problem import Problem
from evobench.task import TEST
from evobench.tasks.jp_lmeh.base import LMEHTask, Spec, truncate
from evobench.tasks.lm_common import (
    check_common,
    data_missing,
    lm_pool,
    lm_problem,
    make_engine,
    positive_int,
)

Loader = Callable[..., tuple[dict, dict]]


def subtask_data(spec: Spec, load: Loader, data_dir, search_path, limit_search, limit_test,
                 takes_search_path: bool) -> tuple[dict, dict]:
    """A subtask's documents and shots per split, each split cut to its limit."""
    positive_int("limit_search", limit_search, optional=True)
    positive_int("limit_test", limit_test, optional=True)
    if search_path is not None and not takes_search_path:
        raise ValueError(f"{spec.name}: search_path applies only to MGSM (its search set); got {search_path!r}")
    try:
        docs, shots = load(data_dir, search_path)
    except DataUnavailableError as e:
        raise data_missing(e) from None
    return truncate(docs, shots, limit_search, limit_test)


def make_factory(spec: Spec, load: Loader, takes_search_path: bool = False) -> Callable[..., Problem]:
    """The registered factory ``f(models, ...) -> Problem`` of one subtask."""

    def factory(models, base: str | None = None, data_dir=None, search_path=None, max_new_tokens: int = 256,
                batch_size: int = 8, device: str = "cpu", dtype: str = "float32", limit_search: int | None = None,
                limit_test: int | None = None) -> Problem:
        names = check_common(models, base, max_new_tokens, batch_size, device, dtype)
        docs, shots = subtask_data(spec, load, data_dir, search_path, limit_search, limit_test, takes_search_path)
        pool = lm_pool(names, base, device, dtype)
        task = LMEHTask(spec, docs, shots, make_engine(pool, batch_size), max_new_tokens)
        return lm_problem(spec.name, task, pool, f"{spec.title} ({len(docs[TEST])} test documents, "
                                                 f"{spec.shots}-shot {spec.metric})")

    factory.__name__ = factory.__qualname__ = spec.key
    factory.__doc__ = (f"JP-LMEH {spec.title}: {spec.shots}-shot, {spec.metric}.\n\n``models``: hub ids, directories or "
                       "``.gguf`` files (one model: scoring only). ``data_dir``: a folder holding the data file "
                       "(None: the hub). ``limit_search``/``limit_test`` keep a split's first n documents."
                       + (" ``search_path``: a translated-GSM8K JSON-lines search set." if takes_search_path else ""))
    return factory
