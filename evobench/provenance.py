"""Provenance attached to every result: code version, package versions, data and model hashes."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("evobench", "torch", "numpy", "scipy", "scikit-learn", "pymoo", "cma", "mlflow", "pydantic")


def git_sha() -> str:
    """Commit of the evobench source tree, with ``-dirty`` when it has local changes ('' if not a checkout)."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return sha + ("-dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``; '' if unknown): models
    trained in code depend on the CPU's math kernels, so results record it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def state_hash(state) -> str:
    """Hash of a state dict's names, shapes and values (a model hash)."""
    import torch

    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return h.hexdigest()[:16]


def problem_provenance(problem) -> dict[str, str]:
    out = {"data_hash": problem.task.data_hash(), "model_family": problem.pool.family.name}
    for name, st in problem.pool.sources:
        out[f"model_hash.{name}"] = state_hash(st)
    if problem.pool.base is not None:
        out["model_hash.base"] = state_hash(problem.pool.base)
    return out
