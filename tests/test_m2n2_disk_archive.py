"""M2N2's disk-backed archive: a .npy memmap in the run's work folder, the same run as in memory,
and the work folder's life cycle (made by the runner, deleted when the run ends however it ends)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from evobench.config import RunConfig
from evobench.registry import BASELINES, TASKS
from evobench.runner import run_one
from evobench.spaces import make_space
from evobench.testing import ToySpace, toy_evaluation

ARCHIVE = "m2n2-archive.npy"


@pytest.fixture(scope="module")
def scratch():
    return TASKS.get("digits-scratch")()


def run(problem, name="m2n2", budget=150, seed=3, work_root=None, on_step=None, **cfg):
    b = BASELINES.get(name)(**cfg)
    r = run_one(problem, b, make_space("params", problem, seed), budget, seed, on_step=on_step,
                work_root=work_root)
    return b, r


@pytest.mark.parametrize("name", ["m2n2", "m2n2-no-crossover"])
def test_disk_archive_gives_the_same_run_as_memory(scratch, tmp_path, name):
    mem_b, mem = run(scratch, name)
    disk_b, disk = run(scratch, name, work_root=tmp_path, archive="disk")
    np.testing.assert_array_equal(disk.values, mem.values)  # every evaluation, bit for bit
    assert disk.recipe == mem.recipe and disk.test_score == mem.test_score
    np.testing.assert_array_equal(np.asarray(disk_b.params), mem_b.params)
    assert disk_b.n_replaced == mem_b.n_replaced > 10


def test_archive_file_lives_in_the_run_work_folder_and_is_removed(scratch, tmp_path):
    seen = []

    def look(_):
        b = holder[0]
        path = b.workdir / ARCHIVE
        assert b.workdir.parent == tmp_path and path.is_file()
        on_disk = np.load(path, allow_pickle=False, mmap_mode="r")  # a plain .npy, no pickle
        assert on_disk.dtype == np.float32 and on_disk.shape == (20, 19210)
        np.testing.assert_array_equal(on_disk, b.params)
        seen.append(path)

    holder = [BASELINES.get("m2n2")(archive="disk")]
    run_one(scratch, holder[0], make_space("params", scratch, 0), 20, 0, on_step=look, work_root=tmp_path)
    assert len(seen) == 20
    assert list(tmp_path.iterdir()) == []  # the work folder and its archive are gone


def test_work_folder_removed_when_the_run_fails(scratch, tmp_path):
    def boom(_):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        run(scratch, budget=10, work_root=tmp_path, on_step=boom, archive="disk")
    assert list(tmp_path.iterdir()) == []


def test_every_run_gets_its_own_empty_work_folder(tmp_path):
    from tests.test_runner import toy_problem

    folders = []
    for seed in (0, 1):
        b = BASELINES.get("random-search")(batch_size=5)

        def note(_, b=b):
            if not folders or folders[-1] != b.workdir:
                assert list(b.workdir.iterdir()) == []  # random search writes nothing there
                folders.append(b.workdir)

        run_one(toy_problem(), b, ToySpace("ps", 5), 10, seed, on_step=note, work_root=tmp_path)
    assert len(folders) == 2 and folders[0] != folders[1]
    assert not any(f.exists() for f in folders)


def test_disk_archive_needs_a_work_folder():
    b = BASELINES.get("m2n2")(archive="disk")
    with pytest.raises(ValueError, match="archive 'disk' needs the run's work folder"):
        b.setup(ToySpace("params", 4), budget=10, seed=0)


def test_disk_archive_state_dict_round_trip(tmp_path):
    space = ToySpace("params", 8)
    b = BASELINES.get("m2n2")(archive="disk").setup(space, budget=100, seed=0, workdir=tmp_path)
    x0 = space.initial(np.random.default_rng(0))
    b.seed(x0, toy_evaluation(x0))
    for _ in range(30):
        x = b.ask()
        b.tell(x, toy_evaluation(x))
    state = b.state_dict()
    want = [b.ask()]
    b.tell(want[0], toy_evaluation(want[0]))
    want.append(b.ask())
    b.load_state_dict(state)
    got = [b.ask()]
    b.tell(got[0], toy_evaluation(got[0]))
    got.append(b.ask())
    np.testing.assert_array_equal(np.stack(got), np.stack(want))


def test_archive_option_is_validated():
    with pytest.raises(ValidationError, match="archive"):
        BASELINES.get("m2n2")(archive="ssd")
    cfg = RunConfig.model_validate({"tasks": ["digits-scratch"], "baselines": [
        {"name": "m2n2", "config": {"archive": "disk"}}]})
    assert cfg.baselines[0].config == {"archive": "disk"}


def test_comparison_keeps_the_work_folder_inside_its_partial_folder(tmp_path, monkeypatch):
    import evobench.compare as compare
    from evobench.config import validate

    parents = []
    m2n2 = BASELINES.get("m2n2")

    class Spy(m2n2):
        def _setup(self):
            parents.append(self.workdir.parent)
            super()._setup()

    get = compare.BASELINES.get
    monkeypatch.setattr(compare.BASELINES, "get", lambda name: Spy if name == "m2n2" else get(name))
    cfg = validate({"tasks": ["digits-scratch"], "baselines": [{"name": "m2n2", "config": {"archive": "disk"}}],
                    "budget": 6, "seeds": [0, 1], "out": str(tmp_path), "name": "disk"})
    comp = compare.run_comparison(cfg, progress=False)
    assert len(parents) == 2 and all(p.name.startswith(".disk-") and ".partial-" in p.name for p in parents)
    assert sorted(p.name for p in comp.out_dir.iterdir()) == ["config.json", "curves.png", "results.json",
                                                              "runs", "table.txt"]
    assert len(list((comp.out_dir / "runs").iterdir())) == 2
