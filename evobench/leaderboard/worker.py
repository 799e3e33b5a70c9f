"""The submitted method's process: ``python -m evobench.leaderboard.worker RUN_FOLDER MEMORY_MB``.

It confines itself (:func:`evobench.leaderboard.sandbox.confine`), then serves evobench over its
stdin/stdout (:mod:`evobench.leaderboard.wire`): ``init`` imports the method and builds it with its
hyper-parameters, ``setup``/``seed``/``ask``/``tell``/``recommend`` drive it through the ``Baseline``
contract on a :class:`ShadowSpace`. The method never sees a model, a task or a score it could
change: evobench's own process builds and scores every candidate and writes every result. A
method's exception ends the process after its message is sent back.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from typing import Any

import numpy as np

from evobench.evaluation import Evaluation
from evobench.leaderboard import wire
from evobench.spaces.base import MergeSpace

IN, OUT = 0, 1  # the pipes to evobench; main() moves them off stdin/stdout (prints go to the log)


class ShadowSpace(MergeSpace):
    """The run's space as the method sees it: kind, dimension, bounds, segments and dtype; its draws
    (``sample``, ``initial``) are made by evobench's process with the method's generator state, so
    they are the same numbers the real space gives in-process."""

    def __init__(self, kind: str, dim: int, lower: np.ndarray, upper: np.ndarray, dtype: str,
                 segments: dict[str, list[int]]) -> None:
        self.kind = kind
        self.dtype = np.dtype(dtype).type
        super().__init__(dim, lower, upper, {k: slice(a, b) for k, (a, b) in segments.items()})

    def decode(self, x):
        raise RuntimeError("a method cannot decode genomes: evobench builds and scores candidates")

    def build(self, x):
        raise RuntimeError("a method cannot build models: evobench builds and scores candidates")

    def _draw(self, op: str, rng: np.random.Generator, k: int = 0) -> np.ndarray:
        wire.send(OUT, {"op": op, "k": int(k), "rng": rng.bit_generator.state})
        header, arrays = wire.recv(IN)
        rng.bit_generator.state = header["rng"]
        return arrays["x"]

    def sample(self, rng, k):
        return self._draw("space.sample", rng, k)

    def initial(self, rng):
        return self._draw("space.initial", rng)


def _load_class(header: dict[str, Any]):
    if header.get("file"):
        spec = importlib.util.spec_from_file_location("evobench_submission", header["file"])
        module = importlib.util.module_from_spec(spec)
        sys.modules["evobench_submission"] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(header["module"])
    obj = module
    for part in header["attr"].split("."):
        obj = getattr(obj, part)
    return obj


def _evaluation(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Evaluation:
    return Evaluation(value=arrays["value"], scores=arrays.get("scores"), descriptors=arrays.get("descriptors"),
                      errors=list(header.get("errors") or []))


class Worker:
    def __init__(self, run_folder: str) -> None:
        self.run_folder = run_folder
        self.method = None
        self.pending: np.ndarray | None = None

    def init(self, h, a):
        from evobench.baseline import Baseline

        cls = _load_class(h)
        if not (isinstance(cls, type) and issubclass(cls, Baseline)):
            raise TypeError(f"{h.get('attr')} is not a subclass of evobench.baseline.Baseline")
        fields = cls.Config.model_fields
        config = {**{k: v for k, v in (h.get("defaults") or {}).items() if k in fields}, **(h.get("config") or {})}
        self.method = cls(config)
        return {"name": cls.name, "spaces": list(cls.spaces), "needs": list(cls.needs),
                "space_needs": {k: list(v) for k, v in cls.space_needs.items()}}, {}

    def setup(self, h, a):
        space = ShadowSpace(h["kind"], h["dim"], a["lower"], a["upper"], h["dtype"], h["segments"])
        work = os.path.join(self.run_folder, "work")
        os.makedirs(work, exist_ok=True)
        self.method.setup(space, h["budget"], h["seed"], workdir=work)
        return {}, {}

    def seed(self, h, a):
        self.method.seed(a["x"], _evaluation(h, a))
        return {}, {}

    def ask(self, h, a):
        self.pending = self.method.ask()
        return {}, {"x": self.pending}

    def tell(self, h, a):
        x, self.pending = self.pending[: int(h["k"])], None
        self.method.tell(x, _evaluation(h, a))
        return {}, {}

    def recommend(self, h, a):
        x = self.method.recommend()
        return {"none": x is None}, {"x": None if x is None else np.asarray(x)}


CONTRACT_TEST = """import json

import pytest

from evobench.contract import BaselineContract
from evobench.leaderboard.worker import _load_class

SPEC = json.loads({spec!r})


class TestSubmission(BaselineContract):
    @pytest.fixture
    def baseline_factory(self):
        return lambda: (_load_class(SPEC), SPEC["config"])
"""


def contract(argv: list[str]) -> int:
    """``--contract RUN_FOLDER MEMORY_MB SPEC_JSON``: the baseline contract suite on the method, confined."""
    import pytest

    from evobench.leaderboard.sandbox import confine

    run_folder, memory_mb, spec = argv
    confine(run_folder, int(memory_mb))
    path = os.path.join(run_folder, "test_contract_submission.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(CONTRACT_TEST.format(spec=spec))
    return int(pytest.main([path, "-q", "-p", "no:cacheprovider", "--rootdir", run_folder, "-x"]))


def main(argv: list[str]) -> int:
    global IN, OUT
    from evobench.leaderboard.sandbox import confine

    if argv and argv[0] == "--contract":
        return contract(argv[1:])

    IN, OUT = os.dup(0), os.dup(1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)  # a method's print() must not corrupt the messages: it goes to the method's log
    run_folder, memory_mb = argv[0], int(argv[1])
    try:
        applied = confine(run_folder, memory_mb)
    except Exception as e:  # noqa: BLE001 - reported to evobench, which refuses to run the method
        wire.send(OUT, {"op": "error", "error": f"sandbox: {e}"})
        return 3
    wire.send(OUT, {"op": "ready", "sandbox": applied})
    worker = Worker(run_folder)
    while True:
        try:
            header, arrays = wire.recv(IN)
        except wire.WireError:
            return 0  # evobench closed the pipe: done
        op = header.get("op")
        handler = getattr(worker, op, None) if op in ("init", "setup", "seed", "ask", "tell", "recommend") else None
        if handler is None:
            wire.send(OUT, {"op": "error", "error": f"unknown request {op!r}"})
            return 3
        try:
            out, out_arrays = handler(header, arrays)
        except BaseException as e:  # noqa: BLE001 - the method's failure is sent back with its message
            tb = traceback.format_exception(e)
            where = next((ln.strip() for ln in reversed(tb) if ln.lstrip().startswith("File ")), "")
            msg = "MemoryError (the track's memory limit)" if isinstance(e, MemoryError) else \
                f"{type(e).__name__}: {' '.join(str(e).split())}"
            wire.send(OUT, {"op": "error", "error": msg, "where": where})
            return 1
        wire.send(OUT, {"op": "done", **out}, out_arrays)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
