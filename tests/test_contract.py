"""Every registered baseline passes the baseline contract (:mod:`evobench.contract`).

Entries whose module is missing or broken fail here (the class is resolved inside each test).
"""

from __future__ import annotations

import numpy as np
import pytest

from evobench.baseline import Baseline
from evobench.contract import BaselineContract
from evobench.registry import BASELINES

# Small configurations where the defaults would make the toy runs slow.
SMALL = {
    "cmaes-dfs": {"popsize": 8},
    "ps-dfs": {"dfs_popsize": 8},
}


class TestRegisteredBaselines(BaselineContract):
    @pytest.fixture(params=BASELINES.names())
    def baseline_factory(self, request):
        name = request.param
        return lambda: (BASELINES.get(name), SMALL.get(name, {}))


@pytest.mark.parametrize("name", BASELINES.names())
def test_registered_under_its_own_name(name):
    assert BASELINES.get(name).name == name


# ---- the suite has teeth: deliberately broken baselines fail the matching contract test -------------
class _Broken(Baseline):
    name = "broken"
    spaces = ("ps",)

    def _ask(self):
        return self.space.sample(self.rng, 5)

    def _tell(self, x, ev):
        pass


class _GlobalRNG(_Broken):
    def _ask(self):
        return np.random.uniform(size=(5, self.space.dim))  # not self.rng: seeds do not reproduce


class _NaNBest(_Broken):
    def _tell(self, x, ev):
        self.mine = x[int(np.argmax(ev.value))]  # argmax picks a NaN first

    def recommend(self):
        return self.mine.copy()


class _StateOutside(_Broken):
    _gens: dict = {}

    def _setup(self):
        self._gens[id(self)] = np.random.default_rng(self.seed_value)

    def _ask(self):  # the generator lives outside the instance, so state_dict misses it
        return self._gens[id(self)].uniform(size=(5, self.space.dim))


@pytest.mark.parametrize(("cls", "test"), [
    (_GlobalRNG, "test_determinism"),
    (_NaNBest, "test_failed_candidates"),
    (_StateOutside, "test_state_dict_round_trip"),
])
def test_contract_catches_broken_baselines(cls, test):
    suite = BaselineContract()
    getattr(suite, test)((_Broken, {}))  # the sound baseline passes ...
    with pytest.raises(AssertionError):
        getattr(suite, test)((cls, {}))  # ... the broken one does not
