"""M2N2: model merging of natural niches (Abrantes, Lange, Tang; Sakana AI, GECCO 2025,
"Competition and Attraction Improve Model Fusion"), on the raw parameter space.

One child per ask. The archive holds ``archive_size`` slots (parameters and per-example scores on the
search split) that start EMPTY: zero parameters, all-zero scores, so fitness 0 and never a parent.
:meth:`M2N2._seed` inserts every starting model exactly like a child.

Fitness sharing (resource competition), with ``s_ij >= 0`` the score of member i on example j
(``Evaluation.scores``; 0/1 on digits, any non-negative float works) and ``c_j = 1``::

    f_i = sum_j s_ij / z_j**alpha,   z_j = sum_k s_kj   (a zero z_j**alpha is read as 1)

z runs over the archive for parent selection and over archive + child for replacement.

Step: parent A ~ f (proportional). Parent B ~ attraction to A,
``g(A, B) = sum_j max(s_Bj / z_j**alpha - s_Aj / z_j**alpha, 0)`` (A itself and empty slots score 0).
If every g is 0 (A dominates all others on every example) B falls back to ~ f; if every f is 0
(e.g. only all-wrong members), draws are uniform over the non-empty members; with no member at all
(every starting model failed) the child is a fresh ``space.sample`` genome.
Crossover: split index k uniform in [0, n), w ~ U(0, 1), ``split_slerp(A, B, t=w, split=k)``: one
SLERP angle for the whole vector, B's weight w before k and 1 - w from k on (lerp when the sine of
the angle is <= 1e-6), computed by the merge op :func:`evobench.merge.slerp.split_slerp` (~0.04 ms
at n = 19,210). Mutation: N(0, sigma^2) added to every element when ``mutation_std`` > 0 (0.01 from
scratch), drawn in the genome's dtype by :func:`evobench.noise.add_gaussian_` (torch's ``normal_``
seeded by one draw of the baseline's generator: a third of the cost of numpy's float32 ziggurat). The pretrained-specialists setting runs without mutation: its preset / the runner sets
``mutation_std: 0``; this class does not guess the setting.
Replacement: the child replaces the lowest-fitness member of archive + child (z over archive +
child); when it is itself the (strictly) lowest it is discarded. Ties go to the first archive slot
(argmin order of the reference, so empty slots fill in order). A failed child (NaN value) is
discarded without touching the archive. ``recommend()`` returns the archive member with the best raw
search value (``ev.value``: train accuracy on digits) — the paper's reported model, not best-ever.

Hyper-parameters (``Config``): ``archive_size`` (20 digits, 15 LLMs), ``alpha`` (1; 0 = plain
fitness), ``mutation_std`` (0.01), ``use_attraction`` (False: both parents ~ f, independently, with
replacement), ``use_split`` (False: one SLERP weight for the whole vector), ``use_crossover`` (False:
the child is parent A, mutated), ``archive`` ("memory"; "disk": see below). The registered ablations
only change these defaults.

Memory: the archive is ``archive_size x n`` genomes of the space's dtype (float32 in the parameter
space: 4 bytes per parameter), preallocated at setup, plus one child and one noise vector; it never
grows with the number of evaluations. Digits: 20 x 19,210 x 4 B = 1.5 MB; SmolLM2-135M:
15 x 135M x 4 B = 8.1 GB; a 7B model: 15 x 7B x 4 B = 420 GB. With ``archive: disk`` the archive is
a ``.npy`` file opened with ``numpy.lib.format.open_memmap`` in the run's work folder
(``Baseline.workdir``, which the runner deletes when the run ends: the archive is scratch; the
recommended model is saved with the run), as the M2N2 paper keeps its archive on disk for large
models. The operating system then pages members in and out; the run is the same as in memory, bit
for bit (the same operations on the same float32 values). ``state_dict`` copies the archive into
memory.

Cost per step: O(archive * n_examples + n) — fitness and attraction are matrix-vector products over
the preallocated archive; the archive never grows. Products use ``np.einsum``, not BLAS: OpenBLAS
threads its dot products at this size and, on a busy 2-core machine, its thread hand-offs made a
step ~6x slower (2.4 ms instead of 0.4 ms). Drawing the n Gaussian mutations is the largest part.
What depends on the archive alone (its column sums z, fitness f, each member's squared norm for the
SLERP angle, every member's attraction to a drawn parent A, and the running sums of f and of each
attraction that the parent draws search) is kept until the archive changes (about one step in six
from scratch): recomputed, it would be the same floats.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from evobench.baseline import Baseline, BaselineConfig
from evobench.evaluation import Evaluation
from evobench.merge.slerp import split_slerp, sq_norm
from evobench.noise import add_gaussian_

PAPER = "Abrantes, Lange, Tang. Competition and Attraction Improve Model Fusion. GECCO 2025"


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.einsum("i,i->", a, b))  # not BLAS: its threads stall for ms on a loaded machine


def _matvec(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("ij,j->i", m, v)


def sharing_weights(scores: np.ndarray, alpha: float, extra: np.ndarray | None = None,
                    colsum: np.ndarray | None = None) -> np.ndarray:
    """``1 / z_j**alpha`` per example, z_j = column sums of ``scores`` (N, m) (+ ``extra``, a child's
    scores, when given); a zero ``z_j**alpha`` is read as 1. ``colsum``: ``scores.sum(axis=0)``,
    already computed (it is not modified)."""
    z = scores.sum(axis=0) if colsum is None else colsum.copy()
    if extra is not None:
        z += extra
    if alpha != 1.0:
        np.power(z, alpha, out=z)
    z[z == 0] = 1.0
    return np.reciprocal(z, out=z)


def shared_fitness(scores: np.ndarray, alpha: float, extra: np.ndarray | None = None,
                   colsum: np.ndarray | None = None) -> np.ndarray:
    """Fitness sharing ``f_i = sum_j s_ij / z_j**alpha`` of the rows of ``scores`` (N, m).

    With ``extra`` (a child's scores, (m,)) z also counts the child and the result has N + 1
    entries, the child's last. ``colsum`` as in :func:`sharing_weights`.
    """
    inv = sharing_weights(scores, alpha, extra, colsum)
    f = _matvec(scores, inv)
    return f if extra is None else np.append(f, _dot(extra, inv))


def attraction(scores: np.ndarray, alpha: float, a_idx: int, inv: np.ndarray | None = None,
               buf: np.ndarray | None = None) -> np.ndarray:
    """Attraction ``g(A, B) = sum_j max(s_Bj - s_Aj, 0) / z_j**alpha`` of every row B to row ``a_idx``
    (z over the rows of ``scores``; pass ``inv = sharing_weights(scores, alpha)`` and a scratch
    ``buf`` shaped like ``scores`` to skip recomputing and allocating)."""
    inv = sharing_weights(scores, alpha) if inv is None else inv
    gain = np.subtract(scores, scores[a_idx], out=buf)
    np.maximum(gain, 0.0, out=gain)
    return _matvec(gain, inv)


class M2N2(Baseline):
    """M2N2 with fitness sharing, attraction-based mate choice and split-point SLERP crossover."""

    name = "m2n2"
    spaces = ("params",)
    needs = ("scores",)
    paper = PAPER

    class Config(BaselineConfig):
        archive_size: int = Field(20, ge=1, description="archive slots (20 digits, 15 LLMs)")
        alpha: float = Field(1.0, ge=0.0, description="fitness-sharing exponent on z_j (0 = plain fitness)")
        mutation_std: float = Field(0.01, ge=0.0, description="Gaussian mutation std (0 for pretrained)")
        use_attraction: bool = Field(True, description="draw parent B by attraction (else ~ f)")
        use_split: bool = Field(True, description="split-point SLERP (else one weight for all)")
        use_crossover: bool = Field(True, description="cross parents (else child = parent A)")
        archive: Literal["memory", "disk"] = Field(
            "memory", description="keep the archive's parameters in memory, or in a .npy memmap in the "
                                  "run's work folder (for models whose archive does not fit in memory)")

    # ---- state ------------------------------------------------------------------------------------
    def _setup(self) -> None:
        s, n, dtype = self.config.archive_size, self.space.dim, self.space.dtype
        # the archive (see the properties ``params`` and ``scores``): all zeros, in memory or on disk
        self._params = self._archive_file(s, n, dtype) if self.config.archive == "disk" else np.zeros((s, n), dtype)
        self._scores: np.ndarray | None = None  # (s, n_examples), allocated at the first scored model
        self._gain: np.ndarray | None = None  # attraction scratch, shaped like scores
        self.values = np.full(s, -np.inf)  # raw search value per member
        self.filled = np.zeros(s, dtype=bool)
        self._noise = np.empty(n, dtype)
        self.n_replaced = 0
        # derived from the archive, recomputed only after it changes (same operations, same floats):
        self._sq = np.full(s, np.nan)  # squared norm of each member's parameters (the SLERP angle's)
        self._colsum: np.ndarray | None = None  # scores.sum(axis=0)
        self._fitness: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see _archive_fitness
        self._attraction: dict[int, np.ndarray] = {}  # parent A -> running sums of attraction to A

    def _archive_file(self, s: int, n: int, dtype) -> np.ndarray:
        """A zero-filled ``(s, n)`` archive memory-mapped from ``<workdir>/m2n2-archive.npy``."""
        if self.workdir is None:
            raise ValueError(f"{self.name}: archive 'disk' needs the run's work folder (setup(..., workdir=...); "
                             "the runner gives one)")
        # a new file is sparse and reads as zeros: the empty slots cost no disk until written
        return np.lib.format.open_memmap(self.workdir / "m2n2-archive.npy", mode="w+", dtype=dtype, shape=(s, n))

    @property
    def params(self) -> np.ndarray:
        """The members' parameters ``(archive_size, dim)`` (empty slots: zeros). Writable: reading it
        here drops what is cached from it."""
        self._sq[:] = np.nan
        return self._params

    @property
    def scores(self) -> np.ndarray | None:
        """The members' per-example scores ``(archive_size, n_examples)``, None before the first
        member. Writable: reading it here drops the fitness cached from it."""
        self._colsum = self._fitness = None
        self._attraction = {}
        return self._scores

    def _seed(self, x0: np.ndarray, ev0: Evaluation) -> None:
        for i in range(x0.shape[0]):
            self._insert(x0[i], ev0, i)

    # ---- ask --------------------------------------------------------------------------------------
    def _cumulative(self, weights: np.ndarray) -> np.ndarray:
        """What :meth:`_draw_from` draws from, an index proportionally to non-negative ``weights``:
        their running sums over the filled slots (of 1 per filled slot when those sum to 0 or
        overflow, so that the draw is uniform over the filled slots)."""
        c = np.cumsum(np.where(self.filled, weights, 0.0))
        if not (c[-1] > 0 and np.isfinite(c[-1])):
            c = np.cumsum(self.filled.astype(float))
        return c

    def _draw_from(self, c: np.ndarray) -> int:
        """Index ``i`` with probability ``(c[i] - c[i-1]) / c[-1]`` (one uniform draw)."""
        return min(int(np.searchsorted(c, self.rng.random() * c[-1], side="right")), len(c) - 1)

    def _archive_colsum(self) -> np.ndarray:
        if self._colsum is None:
            self._colsum = self._scores.sum(axis=0)
        return self._colsum

    def _archive_fitness(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(1 / z**alpha, f, running sums of f to draw from)`` over the archive (z without a child)."""
        if self._fitness is None:
            inv = sharing_weights(self._scores, self.config.alpha, colsum=self._archive_colsum())
            f = _matvec(self._scores, inv)
            self._fitness = inv, f, self._cumulative(f)
        return self._fitness

    def _sq_norm(self, i: int) -> float:
        if np.isnan(self._sq[i]):
            self._sq[i] = sq_norm(self._member(i))
        return float(self._sq[i])

    def _member(self, i: int) -> torch.Tensor:
        """Member ``i``'s parameters as a tensor viewing the archive (a plain array, memmap or not)."""
        return torch.from_numpy(np.asarray(self._params[i]))

    def _parents(self) -> tuple[int, int]:
        cfg = self.config
        inv, _, cf = self._archive_fitness()
        a = self._draw_from(cf)
        if not cfg.use_crossover:
            return a, a
        if not cfg.use_attraction:
            return a, self._draw_from(cf)
        cg = self._attraction.get(a)
        if cg is None:  # running sums of every member's attraction to A (of f when all are 0)
            g = attraction(self._scores, cfg.alpha, a, inv=inv, buf=self._gain)
            g[~self.filled] = 0.0
            cg = self._attraction[a] = self._cumulative(g) if g.sum() > 0 else cf
        return a, self._draw_from(cg)

    def _ask(self) -> np.ndarray:
        if not self.filled.any():
            return self.space.sample(self.rng, 1)
        cfg, n = self.config, self.space.dim
        a, b = self._parents()
        if not cfg.use_crossover:
            child = np.array(self._params[a])
        else:
            k = int(self.rng.integers(0, n)) if cfg.use_split else n
            child = split_slerp(self._member(a), self._member(b), float(self.rng.random()), k,
                                sq_norms=(self._sq_norm(a), self._sq_norm(b))).numpy()
        if cfg.mutation_std > 0:
            add_gaussian_(child, cfg.mutation_std, self.rng, buf=self._noise)
        return child[None, :]

    # ---- tell -------------------------------------------------------------------------------------
    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        for i in range(x.shape[0]):
            self._insert(x[i], ev, i)

    def _insert(self, x: np.ndarray, ev: Evaluation, i: int) -> None:
        """Offer candidate ``i`` of ``ev`` to the archive (the replacement rule); failures are skipped."""
        value = float(ev.value[i])
        if not np.isfinite(value):
            return
        if ev.scores is None:
            raise ValueError(f"{self.name}: fitness sharing needs per-example scores (Evaluation.scores)")
        s = np.asarray(ev.scores[i], dtype=float)
        if not (np.all(np.isfinite(s)) and s.min(initial=0.0) >= 0):
            raise ValueError(f"{self.name}: per-example scores must be finite and >= 0")
        if self._scores is None:
            self._scores = np.zeros((self.config.archive_size, s.shape[0]))
            self._gain = np.empty_like(self._scores)
        elif s.shape[0] != self._scores.shape[1]:
            raise ValueError(f"{self.name}: got {s.shape[0]} per-example scores, expected {self._scores.shape[1]}")
        f = shared_fitness(self._scores, self.config.alpha, extra=s, colsum=self._archive_colsum())
        worst = int(np.argmin(f))
        if worst == len(self.values):
            return  # the child is itself the lowest: discarded
        self._params[worst] = x
        self._scores[worst] = s
        self._sq[worst] = np.nan
        self._colsum = self._fitness = None
        self._attraction = {}
        self.values[worst] = value
        self.filled[worst] = True
        self.n_replaced += 1

    def recommend(self) -> np.ndarray | None:
        """The archive member with the best raw search value (falls back to best-ever if empty)."""
        if not self.filled.any():
            return super().recommend()
        return np.array(self._params[int(np.argmax(np.where(self.filled, self.values, -np.inf)))])


class M2N2NoAttraction(M2N2):
    """Ablation: no matchmaker — both parents drawn ~ f, independently, with replacement."""

    name = "m2n2-no-attraction"

    class Config(M2N2.Config):
        use_attraction: bool = False


class M2N2NoSplit(M2N2):
    """Ablation: no split point — one SLERP weight for the whole vector."""

    name = "m2n2-no-split"

    class Config(M2N2.Config):
        use_split: bool = False


class M2N2NoCrossover(M2N2):
    """Ablation: no crossover — the child is parent A, mutated."""

    name = "m2n2-no-crossover"

    class Config(M2N2.Config):
        use_crossover: bool = False


class M2N2Alpha0(M2N2):
    """Ablation: alpha = 0 — no fitness sharing (plain summed scores)."""

    name = "m2n2-alpha0"

    class Config(M2N2.Config):
        alpha: float = 0.0
