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
def _one_torch_thread():
    """One intra-op torch thread for the whole suite: with the default pool, a busy machine (other
    work on the 2 cores) makes the small matmuls spin-wait and run up to ~100x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
