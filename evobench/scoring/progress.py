"""Progress bars for scoring a whole split (``evobench eval``), off while a search scores candidates.

Only the standard library and tqdm: importable without torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_PROGRESS: ContextVar[str | None] = ContextVar("evobench_scoring_progress", default=None)


@contextmanager
def progress(label: str) -> Iterator[None]:
    """Show a progress bar (stderr, requests done) labelled ``label`` for every batch of requests an
    engine scores inside this block, e.g. while ``evobench eval`` scores a whole split. Outside any
    such block (a search scoring candidates) no bar is shown."""
    token = _PROGRESS.set(label)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def bar(total: int, what: str):
    from tqdm.auto import tqdm

    label = _PROGRESS.get()
    return tqdm(total=total, desc=f"{label}: {what}" if label else what, unit="req", leave=False,
                disable=label is None or total == 0, dynamic_ncols=True)
