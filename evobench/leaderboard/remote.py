"""A submitted method as a ``Baseline`` the runner can drive, running in its own confined process.

:class:`MethodProcess` starts ``python -m evobench.leaderboard.worker`` with a fresh run folder (the
only place it may write), its output going to ``method.log`` there, and talks to it over pipes
(:mod:`evobench.leaderboard.wire`). Every wait is bounded by the time the method has left
(``method_seconds`` per run); past it, or when the process dies, the method is killed and
:class:`MethodError` says why. :func:`remote_baseline` wraps it as a ``Baseline`` subclass with the
method's declared spaces and needs, so :func:`evobench.runner.run_one` runs it exactly like an
in-process baseline — evobench builds, scores and records everything; the method only asks and tells.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evobench.baseline import Baseline
from evobench.evaluation import Evaluation
from evobench.leaderboard import wire

STARTUP_SECONDS = 120.0  # for the method's process to start and confine itself (not the method's time)


class MethodError(RuntimeError):
    """The submitted method failed, broke its limits, or broke the protocol (one line, says which)."""


def child_env(folder: str | os.PathLike, python_path: list[str] | None = None) -> dict[str, str]:
    """The environment of a method's process: ours without tracking or evobench settings, its run folder
    as home and temporary folder (where caches land), and our import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "EVOBENCH_"))}
    env.update(HOME=str(folder), TMPDIR=str(folder), PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join(p for p in (python_path or sys.path) if p))
    return env


class MethodProcess:
    def __init__(self, name: str, run_folder: str | os.PathLike, method_seconds: float, memory_mb: int,
                 python_path: list[str] | None = None) -> None:
        self.name, self.limit, self.memory_mb = name, float(method_seconds), int(memory_mb)
        self.run_folder = Path(run_folder)
        self.run_folder.mkdir(parents=True, exist_ok=True)
        self.used = 0.0  # seconds spent waiting for the method
        self.space = None  # the real space: draws asked for by the method's ShadowSpace
        env = child_env(self.run_folder, python_path)
        self._log = open(self.run_folder / "method.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evobench.leaderboard.worker", str(self.run_folder), str(self.memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=self.run_folder, env=env,
            start_new_session=True)
        self.sandbox = self._reply("start", want="ready", allowance=STARTUP_SECONDS)[0]["sandbox"]

    # ---- talking --------------------------------------------------------------------------------
    def call(self, op: str, header: dict[str, Any] | None = None,
             arrays: dict[str, np.ndarray | None] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        try:
            wire.send(self.proc.stdin.fileno(), {"op": op, **(header or {})}, arrays)
        except (BrokenPipeError, OSError):
            self._fail(f"its process ended before {op}")
        return self._reply(op)

    def _reply(self, op: str, want: str = "done", allowance: float | None = None
               ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Wait for the answer to ``op`` (serving the method's draws meanwhile); ``allowance``: seconds
        to wait that do not count against the method's time (its process starting)."""
        while True:
            t0 = time.monotonic()
            left = allowance if allowance is not None else max(0.0, self.limit - self.used)
            try:
                header, arrays = wire.recv(self.proc.stdout.fileno(), deadline=t0 + left)
            except wire.WireTimeout:
                self.used += 0.0 if allowance is not None else time.monotonic() - t0
                limit = f"{allowance:g} s to start" if allowance is not None else f"{self.limit:g} s per run"
                self._fail(f"exceeded its time limit of {limit} (in {op})")
            except wire.WireError as e:
                self._fail(f"its process ended during {op} ({self._exit_reason()}; {e})")
            if allowance is None:
                self.used += time.monotonic() - t0
            kind = header.get("op")
            if kind == want:
                return header, arrays
            if kind == "error":
                where = f" at {header['where']}" if header.get("where") else ""
                self._fail(f"{op} raised {header.get('error')}{where}")
            if kind in ("space.sample", "space.initial") and self.space is not None:
                self._draw(kind, header)
                continue
            self._fail(f"sent an unexpected message {kind!r} during {op}")

    def _draw(self, kind: str, header: dict[str, Any]) -> None:
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = header["rng"]
            k = int(header.get("k", 0))
        except (KeyError, TypeError, ValueError) as e:
            self._fail(f"asked for a draw with a bad generator state ({e})")
        if not 0 <= k <= 1_000_000:
            self._fail(f"asked for {k} samples")
        x = self.space.sample(rng, k) if kind == "space.sample" else self.space.initial(rng)
        wire.send(self.proc.stdin.fileno(), {"op": "draw", "rng": rng.bit_generator.state}, {"x": x})

    def _exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def _fail(self, why: str) -> None:
        self.close()
        raise MethodError(f"method {self.name!r}: {why}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self._log):
            if f is not None and not f.closed:
                f.close()


class RemoteBaseline(Baseline):
    """A method in a :class:`MethodProcess`, seen by the runner as a ``Baseline``.

    The public contract's checks run here too (call order, shapes, bounds of every asked genome),
    on what the method's process sends back."""

    process: MethodProcess

    def __init__(self, process: MethodProcess) -> None:
        self.process = process
        self.config = None
        self.space = None
        self._pending = None

    def setup(self, space, budget, seed, workdir=None):
        super().setup(space, budget, seed)
        self.process.space = space
        segments = {k: [s.start, s.stop] for k, s in space.segments.items()}
        self.process.call("setup", {"kind": space.kind, "dim": space.dim, "dtype": np.dtype(space.dtype).name,
                                    "segments": segments, "budget": int(budget), "seed": int(seed)},
                          {"lower": space.lower, "upper": space.upper})
        return self

    def _seed(self, x0: np.ndarray, ev0: Evaluation) -> None:
        self.process.call("seed", _ev_header(ev0), {"x": x0, **_ev_arrays(ev0)})

    def _ask(self) -> np.ndarray:
        _, arrays = self.process.call("ask")
        if "x" not in arrays:
            self.process._fail("ask returned no genomes")
        return arrays["x"]

    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        pass  # sent by tell() itself, prefixes included (the method's own contract handles them)

    def tell(self, x: np.ndarray, ev: Evaluation) -> None:
        super().tell(x, ev)
        self.process.call("tell", {"k": len(x), **_ev_header(ev)}, _ev_arrays(ev))

    def recommend(self) -> np.ndarray | None:
        header, arrays = self.process.call("recommend")
        if header.get("none"):
            return None
        try:
            x = self.space.check(arrays["x"][None, :] if arrays["x"].ndim == 1 else arrays["x"])
        except (KeyError, ValueError) as e:
            self.process._fail(f"recommend returned no genome of this space ({e})")
        if x.shape[0] != 1 or (self._bounded and (np.any(x < self.space.lower - 1e-12)
                                                   or np.any(x > self.space.upper + 1e-12))):
            self.process._fail("recommend returned a genome outside the space")
        return x[0].copy()

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError("a submitted method's state lives in its own process")


def _ev_header(ev: Evaluation) -> dict[str, Any]:
    return {"errors": [e if e is None else str(e) for e in ev.errors]}


def _ev_arrays(ev: Evaluation) -> dict[str, np.ndarray | None]:
    return {"value": np.asarray(ev.value, dtype=float), "scores": ev.scores, "descriptors": ev.descriptors}


def remote_baseline(process: MethodProcess, hello: dict[str, Any]) -> RemoteBaseline:
    """A ``RemoteBaseline`` whose class declares the method's name, spaces and needs (from ``init``)."""
    cls = type("Submitted", (RemoteBaseline,), {
        "name": str(hello["name"] or process.name), "spaces": tuple(hello["spaces"]), "needs": tuple(hello["needs"]),
        "space_needs": {k: tuple(v) for k, v in hello["space_needs"].items()}})
    return cls(process)
