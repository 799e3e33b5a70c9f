"""Errors that mean "this candidate failed", as opposed to a bug or a misconfiguration.

The runner records a candidate as failed (NaN fitness, its message kept) only when building or
scoring it raises one of :data:`CANDIDATE_FAILURES`: a :class:`CandidateError` (raised by decoding,
merging and scoring code for a candidate that cannot work), a non-finite output, or running out of
memory. Anything else (a ``TypeError`` in a task, an ``IndexError`` in a merge op ...) is a bug and
stops the run with its traceback: a bug must never look like a search that found nothing.
"""

from __future__ import annotations


class CandidateError(Exception):
    """This candidate cannot be built or scored (a bad recipe, a path with no layers, ...)."""


class NonFiniteError(CandidateError, FloatingPointError):
    """The candidate's weights or outputs are NaN or infinite."""


class StartError(RuntimeError):
    """The starting models of a problem cannot be built or scored: the run cannot start."""


def candidate_failures() -> tuple[type[BaseException], ...]:
    """Exception types that mark a candidate as failed (torch's out-of-memory error included)."""
    import torch

    return (CandidateError, FloatingPointError, MemoryError, torch.OutOfMemoryError)


def describe(e: BaseException) -> str:
    """``Type: message`` on one line, for tables, results and logs."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
