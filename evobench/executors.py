"""Where a comparison's runs run: one after another in the calling process (the default), or as Ray
tasks on a pool of workers (``evobench run --executor ray [--address ADDR] [--workers N]``; extra
``evobench[ray]``).

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


class RayExecutor:
    """Runs of a comparison as Ray actor calls on ``workers`` workers (``address``: an existing
    cluster, e.g. ``ray start --head`` then ``auto`` or ``ray://host:10001``; None starts a local Ray)."""

    def __init__(self, workers: int = 2, address: str | None = None, num_gpus: float = 0.0,
                 cache: dict[str, Any] | None = None) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ImportError("--executor ray needs Ray: pip install 'evobench[ray]'") from None
        self.workers, self.address, self.num_gpus = int(workers), address, float(num_gpus)
        self.cache = cache  # EvalCache settings for the workers: {"path", "max_bytes", "min_seconds"}

    def describe(self) -> str:
        return f"ray ({self.workers} workers{', ' + self.address if self.address else ''})"

    def run(self, cfg, jobs: list[tuple[int, int, int, tuple[bool, bool]]], folder: Path | None,
            provenance: dict[str, dict[str, str]]) -> Iterator[tuple[int, Any, dict[str, Any]]]:
        """Yield ``(job, RunResult, shown)`` as runs finish; ``jobs`` are (job, pair index, seed, show)."""
        import ray
        import torch

        started = not ray.is_initialized()
        if started:
            kw: dict[str, Any] = {"address": self.address} if self.address else {"num_cpus": self.workers}
            ray.init(include_dashboard=False, log_to_driver=False, **kw)
        try:
            threads = cfg.threads or torch.get_num_threads()
            actor = ray.remote(num_cpus=1, num_gpus=self.num_gpus, max_restarts=-1, max_task_retries=-1)(_Worker)
            pool = [actor.remote(cfg.model_dump(mode="json"), threads, self.cache) for _ in range(self.workers)]
            for p in pool:  # every worker built the driver's models
                theirs = ray.get(p.provenance.remote())
                if theirs != provenance:
                    name = next(k for k in provenance if provenance[k] != theirs.get(k))
                    raise RuntimeError(f"a Ray worker built other models than the driver for task {name!r} "
                                       f"(thread count or package versions differ); set --threads")
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
