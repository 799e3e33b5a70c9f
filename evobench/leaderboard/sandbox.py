"""Confining a submitted method's process: writes only inside its run folder, no network, a memory cap.

Applied by the method's own process (:mod:`evobench.leaderboard.worker`) before it imports the
method, with Linux Landlock (kernel ≥ 5.13; the calls are made through ``ctypes``):

* file system: creating, writing, truncating, renaming, linking or deleting anything is allowed only
  beneath the run folder (and writing ``/dev/null``); reading stays allowed (the method imports its
  code and evobench's);
* network (Landlock ABI ≥ 4): no TCP connect or bind;
* scoping (ABI ≥ 6): no signals to, and no abstract unix sockets of, processes outside the sandbox
  (the method cannot kill evobench);
* ``RLIMIT_AS``: the address space is capped at the track's ``memory_mb`` (an allocation past it
  raises ``MemoryError``); ``RLIMIT_CORE`` 0.

The restriction cannot be lifted by the process once applied (``no_new_privs`` is set too).
"""

from __future__ import annotations

import ctypes
import os
import resource
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every Linux architecture
_VERSION_FLAG = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# access rights (include/uapi/linux/landlock.h)
WRITE_FILE, REMOVE_DIR, REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
MAKE_CHAR, MAKE_DIR, MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = (1 << i for i in range(6, 13))
REFER, TRUNCATE = 1 << 13, 1 << 14
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1


class SandboxError(RuntimeError):
    """The sandbox cannot be set up on this machine."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: not available)."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    v = libc.syscall(ctypes.c_long(_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION_FLAG))
    return int(v) if v > 0 else 0


def _write_rights(abi: int) -> int:
    rights = (WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO
              | MAKE_BLOCK | MAKE_SYM)
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    return rights


def confine(run_folder: str | os.PathLike, memory_mb: int) -> dict[str, object]:
    """Confine this process (see the module docstring); returns what was applied."""
    abi = landlock_abi()
    if abi < 1:
        raise SandboxError("Linux Landlock is not available (kernel >= 5.13 with landlock enabled is needed "
                           "to run a submitted method)")
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    rights = _write_rights(abi)
    attr = _RulesetAttr(rights, (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(ctypes.c_long(_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    try:
        file_rights = WRITE_FILE | (TRUNCATE if abi >= 3 else 0)
        for path, allowed in ((Path(run_folder), rights), (Path("/dev/null"), file_rights)):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneath(allowed, fd)
                if libc.syscall(ctypes.c_long(_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    raise SandboxError(f"landlock_add_rule({path}) failed: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise SandboxError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
        if libc.syscall(ctypes.c_long(_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise SandboxError(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    cap = int(memory_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return {"landlock_abi": abi, "network": abi >= 4, "signals_scoped": abi >= 6, "memory_mb": int(memory_mb)}
