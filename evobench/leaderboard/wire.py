"""Messages between evobench and a submitted method's process: JSON headers and ``.npy`` arrays.

A message is a 4-byte big-endian header length, the header (UTF-8 strict JSON, an object), then for
each of the header's ``"arrays"`` names an 8-byte length and the array as ``.npy`` bytes (loaded with
``allow_pickle=False``). Nothing is ever unpickled: a method's process cannot send code.
"""

from __future__ import annotations

import io
import os
import select
import struct
import time
from typing import Any

import numpy as np

from evobench.jsonio import dumps, loads

MAX_HEADER = 16 * 2**20
MAX_ARRAY = 4 * 2**30


class WireError(RuntimeError):
    """The other side sent something that is not a message, or closed the pipe."""


class WireTimeout(WireError):
    """No complete message before the deadline."""


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray | None] | None = None) -> bytes:
    arrays = {k: v for k, v in (arrays or {}).items() if v is not None}
    head = dumps({**header, "arrays": list(arrays)}, indent=None).encode("utf-8")
    parts = [struct.pack(">I", len(head)), head]
    for name in arrays:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
        data = buf.getvalue()
        parts += [struct.pack(">Q", len(data)), data]
    return b"".join(parts)


def send(fd: int, header: dict[str, Any], arrays: dict[str, np.ndarray | None] | None = None) -> None:
    data = memoryview(encode(header, arrays))
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise WireTimeout("no answer before the deadline")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise WireError("the other side closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv(fd: int, deadline: float | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One message from ``fd``; ``deadline`` (time.monotonic) bounds the wait."""
    (n,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if n > MAX_HEADER:
        raise WireError(f"message header of {n} bytes (more than {MAX_HEADER})")
    try:
        header = loads(_read_exact(fd, n, deadline).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise WireError(f"message header is not strict JSON ({e})") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays", []), list):
        raise WireError("message header is not an object with an 'arrays' list")
    arrays = {}
    for name in header.pop("arrays", []):
        (size,) = struct.unpack(">Q", _read_exact(fd, 8, deadline))
        if size > MAX_ARRAY:
            raise WireError(f"array {name!r} of {size} bytes (more than {MAX_ARRAY})")
        try:
            arrays[str(name)] = np.load(io.BytesIO(_read_exact(fd, size, deadline)), allow_pickle=False)
        except ValueError as e:
            raise WireError(f"array {name!r} is not a plain .npy array ({e})") from None
    return header, arrays
