"""Shared benchmark fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a whole module, on both sides of a comparison: the harness's own work is
    single-threaded (presets run their parts with ``--threads 1``), so a multi-threaded forward pass
    would mix thread scaling into the overhead."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
