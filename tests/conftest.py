"""Shared pytest fixtures."""

from __future__ import annotations

import pytest

from tests.mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """URI of a real ``mlflow server`` (sqlite backend, served artifacts) shared by the session."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server.uri


@pytest.fixture(scope="session", autouse=True)
def _no_shared_evaluation_cache():
    """The command line caches evaluations in ~/.cache by default: tests that run it must not see each
    other's (or a user's) entries. Tests of the cache give it their own folder."""
    import os

    saved = os.environ.get("EVOBENCH_EVAL_CACHE")
    os.environ["EVOBENCH_EVAL_CACHE"] = "off"
    yield
    if saved is None:
        os.environ.pop("EVOBENCH_EVAL_CACHE", None)
    else:
        os.environ["EVOBENCH_EVAL_CACHE"] = saved


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op torch thread for the whole suite: with the default pool, a busy machine (other
    work on the 2 cores) makes the small matmuls spin-wait and run up to ~100x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def digits_evals(tmp_path_factory):
    """A digits specialist saved three times (``ref``, ``same`` and ``bad``: its weights plus N(0, 0.15²)
    noise) and `evobench eval` results of ``ref`` (all test examples, and the first 100), of ``same``
    and of ``bad``: (folder of the checkpoints, {name: results folder})."""
    import torch
    from safetensors.torch import save_file

    from evobench.cli import main
    from evobench.registry import TASKS

    root = tmp_path_factory.mktemp("gate")
    state = dict(TASKS.get("digits-specialists")().pool.sources[0][1])
    g = torch.Generator().manual_seed(0)
    bad = {k: v + 0.15 * torch.randn(v.shape, generator=g) for k, v in state.items()}
    for name, st in (("ref", state), ("same", state), ("bad", bad)):
        save_file(st, str(root / f"{name}.safetensors"))
    out = {}
    for name, extra in (("ref", []), ("same", []), ("bad", []), ("limited", ["--limit", "100"])):
        model = "ref" if name == "limited" else name
        assert main(["eval", str(root / f"{model}.safetensors"), "--tasks", "digits-specialists", "--no-tracking",
                     "--out", str(root / name), *extra]) == 0
        (out[name],) = (root / name).iterdir()
    return root, out
