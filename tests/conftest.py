"""Shared pytest fixtures."""

from __future__ import annotations

import pytest

from tests.mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """URI of a real ``mlflow server`` (sqlite backend, served artifacts) shared by the session."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server.uri
