"""digits: the M2N2 paper's "MNIST" experiment on scikit-learn's 8x8 digits (embedded, no download).

Data as the reference code uses it: ``sklearn.datasets.load_digits``, NOT shuffled, the first 80 %
(1,437 images) is the search (train) split and the last 360 the test split, raw pixel values 0-16.
Per-example score = 1 if the argmax of the logits is the label; primary metric = accuracy.
Behaviour descriptors (for MAP-Elites): accuracy on odd digits, accuracy on even digits.

Settings (registered task entries):

- ``digits-scratch``: evolution from scratch; fresh models are 64-256-10 MLPs with N(0, 0.01^2)
  parameters; evolution starts from two of them.
- ``digits-specialists``: the reference setting: two 64-256-10 MLPs from independent N(0, 0.01^2)
  inits (one generator seeded 42 draws both), each trained 10 full-batch Adam steps (lr 3e-3) on
  digits 0-4 and 5-9; merged without mutation. They share no ancestor, so parameter-space recipes
  use a zero base (task vectors are the weights themselves, and DARE drops raw weights).
- ``digits-specialists-shared``: the same two trainings started from ONE shared init, which is the
  base of the task vectors: the setting of recipe merging (EvoLLM-JP's sources share a base model).
- ``digits-specialists-blocks``: shared-init specialists of the block-stacked residual MLP (stem, 4
  residual blocks of width 64, head) so that data-flow-space merging (DFS, PS+DFS) can reorder blocks.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import torch

from evobench.errors import NonFiniteError
from evobench.models.base import ModelFamily, ModelPool, State
from evobench.models.mlp import MLPFamily, ResMLPFamily
from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult

N_TRAIN = 1437


@lru_cache(maxsize=1)
def load_digits_split() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Unshuffled 1437/360 split of sklearn's digits as float32 / int64 tensors."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.asarray(d.data, dtype=np.float32))
    y = torch.from_numpy(np.asarray(d.target, dtype=np.int64))
    return {SEARCH: (x[:N_TRAIN], y[:N_TRAIN]), TEST: (x[N_TRAIN:], y[N_TRAIN:])}


class DigitsTask(Task):
    name = "digits"
    primary_metric = "accuracy"
    metrics = ("accuracy",)
    descriptor_names = ("accuracy_odd", "accuracy_even")
    descriptor_bounds = ((0.0, 1.0), (0.0, 1.0))

    def __init__(self) -> None:
        self.data = load_digits_split()
        self._odd = {s: (y % 2 == 1).numpy() for s, (_, y) in self.data.items()}

    def split_sizes(self) -> dict[str, int]:
        return {s: int(y.shape[0]) for s, (_, y) in self.data.items()}

    def _split(self, split: str, limit: int | None):
        if split not in self.data:
            raise ValueError(f"digits: unknown split {split!r} (have: {', '.join(self.data)})")
        x, y = self.data[split]
        return (x, y) if limit is None else (x[:limit], y[:limit])

    def _result(self, split: str, pred: np.ndarray, y: np.ndarray) -> TaskResult:
        # Accuracies from counts: a sum of 0/1 values is exact in any order, so count / n is the
        # same float as the mean of the 0/1 scores, without the masked copies.
        hit = pred == y
        n = hit.size
        odd = self._odd[split][:n]
        n_hit, n_odd = int(np.count_nonzero(hit)), int(np.count_nonzero(odd))
        hit_odd = int(np.count_nonzero(hit & odd))
        acc = n_hit / n if n else float("nan")
        desc = np.array([hit_odd / n_odd if n_odd else 0.0,
                         (n_hit - hit_odd) / (n - n_odd) if n > n_odd else 0.0])
        return TaskResult(scores=hit.astype(np.float64), metrics={"accuracy": acc}, primary=acc,
                          predictions=pred, targets=y, descriptors=desc, n_forward=n)

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        x, y = self._split(split, limit)
        with torch.no_grad():
            logits = model(x)
        if not torch.isfinite(logits.sum()):  # one reduction: any NaN/inf makes the sum non-finite
            raise NonFiniteError("non-finite logits")
        return self._result(split, logits.argmax(dim=1).numpy(), y.numpy())

    def data_hash(self) -> str:
        h = hashlib.sha256()
        for s in (SEARCH, TEST):
            x, y = self.data[s]
            h.update(x.numpy().tobytes())
            h.update(y.numpy().tobytes())
        return h.hexdigest()[:16]

    def example_ids(self, split: str) -> list[str]:
        """sha256 of each image's float32 pixel bytes, in split order."""
        x, _ = self._split(split, None)
        return [hashlib.sha256(row.tobytes()).hexdigest() for row in x.numpy()]


def random_state(family: ModelFamily, gen: torch.Generator, std: float = 0.01) -> State:
    """Fresh model with every parameter N(0, std^2), drawn in flattening order."""
    vec = torch.randn(family.n_params, generator=gen) * std
    return {k: v.clone() for k, v in family.unflatten(vec).items()}


def train_specialist(family: ModelFamily, state: State, x: torch.Tensor, y: torch.Tensor,
                     steps: int = 10, lr: float = 3e-3) -> State:
    """Full-batch Adam on cross-entropy, as the reference trains its two digit specialists."""
    params = {k: v.clone().requires_grad_(True) for k, v in state.items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(family.build(params)(x), y)
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in params.items()}


@lru_cache(maxsize=4)
def specialist_states(family_key: tuple, seed: int = 42, steps: int = 10, lr: float = 3e-3,
                      shared_init: bool = False) -> tuple[State, State, State | None]:
    """The two specialists (digits 0-4, 5-9) and their shared init (None when inits are independent).

    Independent inits (the reference): one generator seeded ``seed`` draws A's init, then B's.
    Shared init: both are trained from the first draw, which is then the base of task vectors.
    """
    family = _family(family_key)
    x, y = load_digits_split()[SEARCH]
    gen = torch.Generator().manual_seed(seed)
    init_a = random_state(family, gen)
    init_b = init_a if shared_init else random_state(family, gen)
    low = y < 5
    return (train_specialist(family, init_a, x[low], y[low], steps, lr),
            train_specialist(family, init_b, x[~low], y[~low], steps, lr),
            init_a if shared_init else None)


def _check(**options) -> None:
    """Validate a setting's options (one-line ValueError naming the option) before building anything."""
    positive_int = ("hidden", "n_blocks")
    for k, v in options.items():
        if k in positive_int + ("train_steps", "seed"):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{k} must be an integer, got {v!r}")
            low = 1 if k in positive_int else 0
            if v < low or (k == "seed" and v >= 2**63):
                raise ValueError(f"{k} must be {'a positive integer' if low else 'an integer >= 0'}"
                                 f"{' below 2**63' if k == 'seed' else ''}, got {v}")
        elif k in ("lr", "init_std"):
            if isinstance(v, bool) or not isinstance(v, int | float) or not (0 < v < float("inf")):
                raise ValueError(f"{k} must be a positive number, got {v!r}")


def _family(key: tuple) -> ModelFamily:
    kind, *dims = key
    return MLPFamily(*dims) if kind == "mlp" else ResMLPFamily(*dims)


def _specialists(key: tuple, name: str, seed: int, steps: int, lr: float, shared_init: bool) -> Problem:
    _check(hidden=key[2], seed=seed, train_steps=steps, lr=lr, **({"n_blocks": key[4]} if key[0] == "res" else {}))
    family = _family(key)
    a, b, base = specialist_states(key, seed, steps, lr, shared_init)
    pool = ModelPool(family, sources=[("digits-0to4", a), ("digits-5to9", b)], base=base)
    init = "one shared init (the base)" if shared_init else "independent inits"
    return Problem(name, DigitsTask(), pool, baseline_defaults={"mutation_std": 0.0},
                   description=f"merge two {family.name} specialists (digits 0-4, 5-9; {init})")


def scratch(hidden: int = 256, init_std: float = 0.01) -> Problem:
    """Evolve 64-hidden-10 MLPs from scratch (fresh models N(0, init_std^2))."""
    _check(hidden=hidden, init_std=init_std)
    family = MLPFamily(64, hidden, 10)

    def sampler(rng: np.random.Generator) -> State:
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return random_state(family, gen, init_std)

    pool = ModelPool(family, sampler=sampler, n_start=2)
    return Problem("digits-scratch", DigitsTask(), pool,
                   description=f"evolve {family.name} from N(0, {init_std}^2) parameters")


def specialists(hidden: int = 256, seed: int = 42, train_steps: int = 10, lr: float = 3e-3) -> Problem:
    """Merge two 64-hidden-10 MLP specialists (digits 0-4, 5-9) from independent inits (reference)."""
    return _specialists(("mlp", 64, hidden, 10), "digits-specialists", seed, train_steps, lr, False)


def specialists_shared(hidden: int = 256, seed: int = 42, train_steps: int = 10, lr: float = 3e-3) -> Problem:
    """Merge two 64-hidden-10 MLP specialists fine-tuned from one shared init (task vectors' base)."""
    return _specialists(("mlp", 64, hidden, 10), "digits-specialists-shared", seed, train_steps, lr, True)


def specialists_blocks(hidden: int = 64, n_blocks: int = 4, seed: int = 42, train_steps: int = 10,
                       lr: float = 3e-3) -> Problem:
    """Merge two block-stacked residual MLP specialists from one shared init; DFS-capable."""
    return _specialists(("res", 64, hidden, 10, n_blocks), "digits-specialists-blocks", seed, train_steps, lr,
                        True)
