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


class FoldError(ValueError):
    """A layer path cannot be written as a plain checkpoint (:mod:`evobench.merge.fold`; one line, says why)."""


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


def missing_package(e: ModuleNotFoundError) -> str:
    """``needs the optional package 'x' (pip install 'evobench[extra]')``: the extra is read from
    evobench's own package metadata, so the hint stays true when the extras change."""
    import re
    from importlib import metadata

    top = (e.name or "").split(".")[0]
    want = top.replace("_", "-").lower()
    extra = None
    try:
        for req in metadata.requires("evobench") or []:
            m = re.match(r"\s*([A-Za-z0-9_.-]+).*;\s*extra\s*==\s*['\"]([^'\"]+)['\"]", req)
            if m and m.group(1).replace("_", "-").lower() == want:
                extra = m.group(2)
                break
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        pass
    hint = f"pip install 'evobench[{extra}]'" if extra else f"pip install {top}"
    return f"needs the optional package {top!r} ({hint})"
