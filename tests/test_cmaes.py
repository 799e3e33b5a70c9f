"""CMA-ES baselines (cmaes-ps, cmaes-dfs, ps-dfs), their shared pycma driver, and random search."""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest

from evobench.baselines.cmaes_dfs import CMAESDFS
from evobench.baselines.cmaes_ps import CMAESPS, CMADriver
from evobench.baselines.ps_dfs import PSDFS
from evobench.baselines.random_search import RandomSearch
from evobench.contract import run_to_budget, start, step, toy_space
from evobench.testing import ToySpace, toy_evaluation


def _bounds(es):
    lo, hi = es.opts["bounds"]
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def test_ps_defaults():
    space = ToySpace("ps", 8)
    b = start(CMAESPS, {}, space, 1000, seed=0)
    x = b.ask()
    es = b.cma.es
    assert es.sigma0 == pytest.approx(1 / 6)
    assert np.array_equal(es.x0, np.full(8, 0.5))
    assert es.popsize == 4 + math.floor(3 * math.log(8)) == 10
    assert x.shape == (10, 8) and x.min() >= 0.0 and x.max() <= 1.0
    lo, hi = _bounds(es)
    assert np.array_equal(lo, np.zeros(8)) and np.array_equal(hi, np.ones(8))
    assert es.opts["CMA_diagonal"] is False


def test_params_defaults_diagonal_at_high_dim():
    space = ToySpace("params", 1500)
    b = start(CMAESPS, {}, space, 1000, seed=0)
    x0 = space.initial(np.random.default_rng(0))[0]
    x = b.ask()
    es = b.cma.es
    assert es.sigma0 == pytest.approx(0.01)
    assert es.popsize == 20 and x.shape == (20, 1500)
    assert np.array_equal(es.x0, x0)  # the first seeded network
    assert es.opts["CMA_diagonal"] is True
    assert es.opts["bounds"] in (None, [None, None])


@pytest.mark.parametrize(("dim", "diagonal", "expected"), [
    (12, "auto", False), (12, True, True), (1001, "auto", True), (1000, "auto", False)])
def test_diagonal_option(dim, diagonal, expected):
    b = start(CMAESPS, {"diagonal": diagonal}, ToySpace("params", dim), 100, seed=0)
    b.ask()
    assert b.cma.es.opts["CMA_diagonal"] is expected


def test_params_without_seed_samples_x0_and_config_overrides():
    space = ToySpace("params", 50)
    b = CMAESPS({"sigma0": 0.05, "popsize": 6}).setup(space, 100, seed=1)
    x = b.ask()
    es = b.cma.es
    assert x.shape == (6, 50) and es.sigma0 == pytest.approx(0.05)
    assert 0.005 < np.std(es.x0) < 0.02  # one N(0, 0.01^2) network from space.sample
    with pytest.raises(pydantic.ValidationError):
        CMAESPS({"diagonal": "sometimes"})


def test_cmaes_dfs_defaults():
    space = ToySpace("dfs", 8)
    b = start(CMAESDFS, {}, space, 1000, seed=0)
    x = b.ask()
    assert x.shape == (128, 8) and b.cma.es.popsize == 128
    assert b.cma.es.sigma0 == pytest.approx(1 / 6)
    assert np.array_equal(b.cma.es.x0, space.initial(np.random.default_rng(0))[0])


def test_partial_tell_minimum_is_pycmas():
    drv = CMADriver(np.full(5, 0.5), 1 / 6, seed=0, popsize=10, bounds=(np.zeros(5), np.ones(5)))
    assert drv.min_tell == 5  # mu = popsize // 2
    x = drv.ask()
    v = toy_evaluation(x).value
    v[: 10 - drv.min_tell] = np.nan  # exactly mu finite: pycma accepts the partial tell
    assert drv.tell(v) and drv.es.countiter == 1
    x = drv.ask()
    v = toy_evaluation(x).value
    v[: 11 - drv.min_tell] = np.nan  # one fewer: the generation is dropped
    assert not drv.tell(v) and drv.es.countiter == 1
    assert np.all(np.isfinite(drv.ask()))  # and pycma keeps sampling


def test_nan_rows_never_reach_pycma():
    space = ToySpace("ps", 8)
    b = start(CMAESPS, {}, space, 1000, seed=2)
    b.ask()
    b.tell(b._pending, toy_evaluation(b._pending))  # builds the strategy
    calls = []
    real_tell = b.cma.es.tell

    def spy(solutions, values, *args, **kwargs):
        calls.append((np.array(solutions), np.array(values, dtype=float)))
        return real_tell(solutions, values, *args, **kwargs)

    b.cma.es.tell = spy
    masks = [np.arange(10) % 3 == 0, np.arange(10) >= 2, np.zeros(10, dtype=bool)]
    for fail in masks:
        x = b.ask()
        ev = toy_evaluation(x, fail=fail)
        b.tell(x, ev)
        if (~fail).sum() >= b.cma.min_tell:
            sol, val = calls[-1]
            assert np.array_equal(val, -ev.value[~fail])
            assert np.allclose(sol, x[~fail])
    assert [len(v) for _, v in calls] == [6, 10]  # the generation with 2 finite members was dropped
    assert all(np.all(np.isfinite(v)) for _, v in calls)


def test_pycma_leaves_numpy_global_rng_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    run_to_budget(start(CMAESPS, {}, ToySpace("ps", 8), 60, seed=0))
    assert np.array_equal(np.random.get_state()[1], before)


def test_cmaes_beats_random_search_at_equal_budget():
    space, budget = ToySpace("ps", 40), 200

    def best(cls, seed):
        b = start(cls, {}, space, budget, seed)
        run_to_budget(b)
        return b.best_f

    seeds = range(5)
    cma_mean = np.mean([best(CMAESPS, s) for s in seeds])
    rs_mean = np.mean([best(RandomSearch, s) for s in seeds])
    assert cma_mean > rs_mean + 0.05, (cma_mean, rs_mean)


def test_ps_dfs_phases():
    space = toy_space("ps+dfs")
    ps, dfs = space.segments["ps"], space.segments["dfs"]
    b = start(PSDFS, {"dfs_popsize": 8}, space, 60, seed=0)
    start_genome = space.initial(np.random.default_rng(0))[0]
    phase1, phase2, switch_best = [], [], None
    while b.remaining > 0:
        before, best = b.n_told, b.best_x
        x = step(b, 1)[0]
        if before < 30:
            phase1.append(x)
        else:
            if switch_best is None:
                switch_best = best
            phase2.append(x)
    assert b.n_told == 60 and phase1 and phase2
    assert all(x.shape[0] == 4 + math.floor(3 * math.log(3)) for x in phase1)
    assert all(x.shape[0] == 8 for x in phase2)
    p1, p2 = np.concatenate(phase1), np.concatenate(phase2)
    assert np.all(p1[:, dfs] == start_genome[dfs])  # phase 1 moves only the PS knobs
    assert np.ptp(p1[:, ps], axis=0).min() > 0
    assert not np.array_equal(switch_best[ps], start_genome[ps])  # phase 1 found a better recipe ...
    assert np.all(p2[:, ps] == switch_best[ps])  # ... and phase 2 keeps it fixed
    assert np.ptp(p2[:, dfs], axis=0).min() > 0
    assert b.cma.es.x0.shape == (5,) and np.array_equal(b.cma.es.x0, start_genome[dfs])


def test_ps_dfs_needs_segments_and_can_skip_phase_one():
    from evobench.spaces.base import SpaceError

    with pytest.raises(SpaceError):
        PSDFS().setup(ToySpace("ps+dfs", 8), 10, 0)  # no ps/dfs segments
    b = start(PSDFS, {"ps_fraction": 0.0, "dfs_popsize": 8}, toy_space("ps+dfs"), 16, seed=0)
    x = b.ask()
    assert b.phase == 2 and x.shape == (8, 8) and np.all(x[:, :3] == 0.5)


def test_random_search_batches():
    space = ToySpace("dfs", 5)
    b = start(RandomSearch, {}, space, 50, seed=0)
    x = b.ask()
    assert x.shape == (20, 5) and 0 <= x.min() and x.max() <= 1 and np.ptp(x, axis=0).min() > 0.5
    b = start(RandomSearch, {"batch_size": 7}, space, 50, seed=0)
    assert b.ask().shape == (7, 5)


def _drive(b, space, steps, value_fn):
    from evobench.evaluation import Evaluation

    for _ in range(steps):
        x = b.ask()
        v = value_fn(x)
        b.tell(x, Evaluation(value=v, scores=np.zeros((len(x), 1))))


def test_ipop_restarts_only_when_asked_and_double_the_population():
    from evobench.registry import BASELINES
    from evobench.testing import ToySpace

    flat = lambda x: np.zeros(len(x))  # noqa: E731 — a plateau: pycma stops, the search stalls
    space = ToySpace("ps", 4)
    plain = BASELINES.get("cmaes-ps")().setup(space, 10_000, 0)
    _drive(plain, space, 60, flat)
    assert plain.n_restarts == 0 and plain.cma.popsize == 8  # 4 + floor(3 ln 4)

    ipop = BASELINES.get("cmaes-ps")(restarts=2, stall_generations=5).setup(space, 10_000, 0)
    _drive(ipop, space, 60, flat)
    assert ipop.n_restarts == 2 and ipop.cma.popsize == 32  # 8 -> 16 -> 32


def test_no_restart_while_the_generation_best_improves():
    from evobench.registry import BASELINES
    from evobench.testing import ToySpace

    counter = iter(range(10**6))

    def rising(x):  # every generation is better than the last; members differ within a generation
        return float(next(counter)) - ((x - 0.3) ** 2).sum(axis=1)

    b = BASELINES.get("cmaes-ps")(restarts=3, stall_generations=2).setup(ToySpace("ps", 4), 10_000, 0)
    _drive(b, b.space, 20, rising)
    assert b.n_restarts == 0
