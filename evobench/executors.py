"""Where a comparison's runs run: one after another in the calling process (the default), or as Ray
tasks on a pool of workers (``evobench run --executor ray [--address ADDR] [--workers N]``; extra
``evobench[ray]``), or one after another with each asked batch's candidates scored on Ray actors
(``--executor ray-candidates``, :class:`RayCandidateExecutor`).

Each Ray worker is an actor that plans the comparison itself (:func:`evobench.compare.plan`: the same
problems, models and spaces as the driver, built once per worker) and runs the (baseline, task,
seed) runs it is given with :func:`evobench.compare.execute_job`, exactly as the serial loop does,
journal and work folder included. The driver scores the sources, saves each run and logs it to the
tracker as it comes back, and keeps the plan's order in the results, so a comparison gives the same
``results.json`` with either executor and in any completion order (wall times aside).

**Same models everywhere.** Task factories may train models (digits specialists) whose floats depend
on torch's thread count: workers use the driver's (``--threads``; with Ray, one thread per worker is
the sensible setting), and each worker's problems must have the driver's content hashes
(``problem_provenance``) or the comparison stops with one line.

**Failures.** A worker that dies (killed, out of memory, a lost node) is restarted by Ray and its
run retried; the retried run replays its journal (:mod:`evobench.journal`) when the worker can see
the results folder (one machine, or a shared file system), so no evaluation is lost or changed. An
exception inside a run is a bug and stops the comparison, as in the serial loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _settings(name: str, workers: int, address: str | None, num_gpus: float) -> tuple[int, str | None, float]:
    """Checked executor settings (``--executor NAME``); Ray must be installed."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ImportError(f"--executor {name} needs Ray: pip install 'evobench[ray]'") from None
    return int(workers), address, float(num_gpus)


def _init_ray(address: str | None, workers: int) -> bool:
    """Start a local Ray (or join ``address``) unless one is running; whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
    ray.init(include_dashboard=False, log_to_driver=False, **kw)
    return True


class RayExecutor:
    """Runs of a comparison as Ray actor calls on ``workers`` workers (``address``: an existing
    cluster, e.g. ``ray start --head`` then ``auto`` or ``ray://host:10001``; None starts a local Ray)."""

    def __init__(self, workers: int = 2, address: str | None = None, num_gpus: float = 0.0,
                 cache: dict[str, Any] | None = None) -> None:
        self.workers, self.address, self.num_gpus = _settings("ray", workers, address, num_gpus)
        self.cache = cache  # EvalCache settings for the workers: {"path", "max_bytes", "min_seconds"}

    def describe(self) -> str:
        return f"ray ({self.workers} workers{', ' + self.address if self.address else ''})"

    def run(self, cfg, jobs: list[tuple[int, int, int, tuple[bool, bool]]], folder: Path | None,
            provenance: dict[str, dict[str, str]]) -> Iterator[tuple[int, Any, dict[str, Any]]]:
        """Yield ``(job, RunResult, shown)`` as runs finish; ``jobs`` are (job, pair index, seed, show)."""
        import ray
        import torch

        started = _init_ray(self.address, self.workers)
        try:
            threads = cfg.threads or torch.get_num_threads()
            actor = ray.remote(num_cpus=1, num_gpus=self.num_gpus, max_restarts=-1, max_task_retries=-1)(_Worker)
            pool = [actor.remote(cfg.model_dump(mode="json"), threads, self.cache) for _ in range(self.workers)]
            for p in pool:  # every worker built the driver's models
                _check_provenance(ray.get(p.provenance.remote()), provenance)
            free = list(pool)
            waiting: dict[Any, tuple[int, Any]] = {}
            queue = list(jobs)
            while queue or waiting:
                while queue and free:
                    j, pair_index, seed, show = queue.pop(0)
                    w = free.pop(0)
                    waiting[w.run.remote(pair_index, seed, None if folder is None else str(folder), show)] = (j, w)
                done, _ = ray.wait(list(waiting), num_returns=1)
                j, w = waiting.pop(done[0])
                free.append(w)
                res, shown = ray.get(done[0])
                yield j, res, shown
        finally:
            if started:
                ray.shutdown()


class RayCandidateExecutor:
    """Runs one after another in the driver; every asked batch's candidates are scored on ``workers``
    Ray actors that each hold the comparison's models (built once per actor, as :class:`_Worker` does;
    ``num_gpus`` per actor where GPUs exist). The baseline, budget, journal, cache and saving stay in
    the driver; each candidate goes to the next free actor and the scores come back in the batch's
    order, so the results equal the serial executor's whatever the completion order. An actor that
    dies is restarted by Ray and its candidate scored again (scoring is deterministic). It pays off
    for baselines that ask several candidates at once (CMA-ES, GA, random search), not for M2N2's
    one child per step; the starting and recommended models are scored in the driver."""

    candidate_level = True

    def __init__(self, workers: int = 2, address: str | None = None, num_gpus: float = 0.0) -> None:
        self.workers, self.address, self.num_gpus = _settings("ray-candidates", workers, address, num_gpus)
        self.pool: list[Any] = []
        self._started = False

    def describe(self) -> str:
        return f"ray-candidates ({self.workers} scorers{', ' + self.address if self.address else ''})"

    def start(self, cfg, provenance: dict[str, dict[str, str]]) -> None:
        """Start the actors (each plans the comparison) and check they built the driver's models."""
        import ray
        import torch

        self._started = _init_ray(self.address, self.workers)
        threads = cfg.threads or torch.get_num_threads()
        actor = ray.remote(num_cpus=1, num_gpus=self.num_gpus, max_restarts=-1, max_task_retries=-1)(_Scorer)
        self.pool = [actor.remote(cfg.model_dump(mode="json"), threads) for _ in range(self.workers)]
        for p in self.pool:
            _check_provenance(ray.get(p.provenance.remote()), provenance)

    def scorer(self, pair_index: int, seed: int):
        """The run's scorer: ``score(genomes, split) -> [TaskResult | message, ...]`` in the genomes' order."""
        import ray

        def score(x, split):
            results: list[Any] = [None] * len(x)
            free, waiting, i = list(self.pool), {}, 0
            while i < len(x) or waiting:
                while i < len(x) and free:
                    a = free.pop(0)
                    waiting[a.score.remote(pair_index, seed, x[i], split)] = (i, a)
                    i += 1
                done, _ = ray.wait(list(waiting), num_returns=1)
                j, a = waiting.pop(done[0])
                results[j] = ray.get(done[0])
                free.append(a)
            return results

        return score

    def close(self) -> None:
        import ray

        self.pool = []
        if self._started:
            ray.shutdown()


def _check_provenance(theirs: dict[str, dict[str, str]], ours: dict[str, dict[str, str]]) -> None:
    if theirs != ours:
        name = next(k for k in ours if ours[k] != theirs.get(k))
        raise RuntimeError(f"a Ray worker built other models than the driver for task {name!r} "
                           f"(thread count or package versions differ); set --threads")


class _Scorer:
    """A Ray actor holding the comparison's problems; scores one candidate of a run on request."""

    def __init__(self, config: dict[str, Any], threads: int) -> None:
        import torch

        from evobench.compare import plan
        from evobench.config import RunConfig
        from evobench.provenance import problem_provenance

        torch.set_num_threads(threads)
        self.cfg = RunConfig.model_validate(config)
        self.pairs, _ = plan(self.cfg)
        self._provenance = {p.problem.name: problem_provenance(p.problem) for p in self.pairs}
        self._space_key, self._space = None, None

    def provenance(self) -> dict[str, dict[str, str]]:
        return self._provenance

    def score(self, pair_index: int, seed: int, x, split: str):
        from evobench.runner import score_candidate
        from evobench.spaces import make_space

        pair = self.pairs[pair_index]
        if self._space_key != (pair_index, seed):  # one run's space at a time (memory stays flat)
            self._space = make_space(pair.space, pair.problem, seed, **self.cfg.spaces.get(pair.space, {}))
            self._space_key = (pair_index, seed)
        return score_candidate(self._space, pair.problem.task, x, split)


class _Worker:
    """A Ray actor: the comparison's problems built once, runs executed on request."""

    def __init__(self, config: dict[str, Any], threads: int, cache: dict[str, Any] | None) -> None:
        import torch

        from evobench.compare import plan
        from evobench.config import RunConfig
        from evobench.provenance import problem_provenance

        torch.set_num_threads(threads)
        self.cfg = RunConfig.model_validate(config)
        self.pairs, _ = plan(self.cfg)
        self._provenance = {p.problem.name: problem_provenance(p.problem) for p in self.pairs}
        self.cache = None
        if cache:
            from evobench.evalcache import EvalCache

            self.cache = EvalCache(cache["path"], max_bytes=cache["max_bytes"], min_seconds=cache["min_seconds"])

    def provenance(self) -> dict[str, dict[str, str]]:
        return self._provenance

    def run(self, pair_index: int, seed: int, folder: str | None, show: tuple[bool, bool]):
        from evobench.compare import execute_job

        pair = self.pairs[pair_index]
        here = Path(folder) if folder is not None and Path(folder).is_dir() else None  # a remote node: no journal
        return execute_job(self.cfg, pair, seed, here, self.cache, self._provenance[pair.problem.name], show,
                           saving=folder is not None)
