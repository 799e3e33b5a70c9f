"""wine-specialists: a task package as a third party would write it, on evobench's public API only.

scikit-learn's wine data (178 wines, 13 features, 3 cultivars; embedded, no download). Every
``test_every``-th wine (in the data's order) is a test example, the rest are the search split;
features are standardised with the search split's mean and standard deviation. Per-example score =
1 if the argmax of the logits is the cultivar; primary metric = accuracy. No behaviour descriptors.

The models are 13-16-3 MLPs: one init drawn from a seeded generator (the base of task vectors) and
two specialists trained from it for a few full-batch Adam steps, one on cultivars 0 and 1, one on
cultivars 1 and 2.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from evobench.errors import NonFiniteError
from evobench.models.base import ModelPool, State
from evobench.models.mlp import MLPFamily
from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult

NAME = "wine-specialists"


def wine_splits(test_every: int = 4) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Search and test splits of the wine data as standardised float32 features and int64 labels."""
    from sklearn.datasets import load_wine

    d = load_wine()
    x, y = np.asarray(d.data, dtype=np.float64), np.asarray(d.target, dtype=np.int64)
    test = np.arange(len(y)) % test_every == 0
    mean, std = x[~test].mean(axis=0), x[~test].std(axis=0)
    x = ((x - mean) / std).astype(np.float32)
    return {SEARCH: (torch.from_numpy(x[~test]), torch.from_numpy(y[~test])),
            TEST: (torch.from_numpy(x[test]), torch.from_numpy(y[test]))}


class WineTask(Task):
    name = "wine"
    primary_metric = "accuracy"
    metrics = ("accuracy",)

    def __init__(self, test_every: int = 4) -> None:
        self.data = wine_splits(test_every)

    def split_sizes(self) -> dict[str, int]:
        return {s: int(y.shape[0]) for s, (_, y) in self.data.items()}

    def _split(self, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self.data:
            raise ValueError(f"wine: unknown split {split!r} (have: {', '.join(self.data)})")
        x, y = self.data[split]
        return (x, y) if limit is None else (x[:limit], y[:limit])

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        x, y = self._split(split, limit)
        with torch.no_grad():
            logits = model(x)
        if not torch.isfinite(logits).all():
            raise NonFiniteError("wine: non-finite logits")
        pred = logits.argmax(dim=1).numpy()
        correct = (pred == y.numpy()).astype(np.float64)
        acc = self.aggregate(correct)
        return TaskResult(scores=correct, metrics={"accuracy": acc}, primary=acc, predictions=pred,
                          targets=y.numpy(), n_forward=int(correct.size))

    def data_hash(self) -> str:
        h = hashlib.sha256()
        for s in (SEARCH, TEST):
            for t in self.data[s]:
                h.update(t.numpy().tobytes())
        return h.hexdigest()[:16]

    def example_ids(self, split: str) -> list[str]:
        x, _ = self._split(split, None)
        return [hashlib.sha256(row.tobytes()).hexdigest() for row in x.numpy()]


def train(family: MLPFamily, init: State, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> State:
    """Full-batch Adam on cross-entropy from ``init``."""
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(family.build(params)(x), y).backward()
        opt.step()
    return {k: v.detach() for k, v in params.items()}


def wine_specialists(hidden: int = 16, seed: int = 0, train_steps: int = 20, lr: float = 1e-2,
                     test_every: int = 4) -> Problem:
    """Merge two wine MLP specialists (cultivars 0-1, 1-2) trained from one shared init."""
    task = WineTask(test_every)
    family = MLPFamily(13, hidden, 3)
    gen = torch.Generator().manual_seed(seed)
    base = {k: torch.randn(shape, generator=gen) * 0.1 for k, shape in family.shapes.items()}
    x, y = task.data[SEARCH]
    low, high = y <= 1, y >= 1
    pool = ModelPool(family, sources=[("cultivars-0-1", train(family, base, x[low], y[low], train_steps, lr)),
                                      ("cultivars-1-2", train(family, base, x[high], y[high], train_steps, lr))],
                     base=base)
    return Problem(NAME, task, pool, baseline_defaults={"mutation_std": 0.0},
                   description="merge two wine MLP specialists (cultivars 0-1, 1-2; one shared init)")
