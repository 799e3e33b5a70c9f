"""Merging checkpoints on disk tensor by tensor: memory holds one tensor per source, not the models.

:class:`SafetensorsFile` is a read-only mapping over a ``.safetensors`` file that reads a tensor
from disk (``os.pread`` at the offsets of the file's header) only when it is asked for, and keeps
nothing: a merge that walks the tensors one at a time (:func:`evobench.merge.ops.iter_merged`)
holds at most one tensor of each source, the base's and the merged one. :class:`SafetensorsWriter`
writes the safetensors format as a stream: the header (every name, dtype, shape and offset) is
known before the first tensor is merged, so each merged tensor is written the moment it exists and
dropped. The output goes to a temporary file in the output's folder, fsynced and renamed: an
interrupted merge never leaves a file that reads as complete. :func:`merge_files` puts the two
together (``tests/test_merge_stream.py`` measures the peak memory of a 3-model merge).

The files are read by evobench's own parser of the safetensors layout (8-byte little-endian header
length, a JSON header, the raw little-endian data), with every offset checked against the file's
size; a file that does not parse is a one-line :class:`ValueError` naming it.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
CODES = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 100 << 20


class SafetensorsFile(Mapping[str, torch.Tensor]):
    """The tensors of one ``.safetensors`` file, each read from disk when asked for (not kept)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise ValueError("shorter than a safetensors header")
                (n,) = struct.unpack("<Q", head)
                if n > min(size - 8, MAX_HEADER):
                    raise ValueError(f"header of {n} bytes in a file of {size}")
                header = json.loads(f.read(n).decode("utf-8"))
        except OSError as e:
            raise ValueError(f"{self.path}: cannot read ({e.strerror or e})") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{self.path} is not a safetensors file ({e})") from None
        if not isinstance(header, dict):
            raise ValueError(f"{self.path} is not a safetensors file (its header is not a mapping)")
        self.metadata = header.pop("__metadata__", None) or {}
        self._start = 8 + n
        self.entries: dict[str, tuple[torch.dtype, tuple[int, ...], int, int]] = {}
        data = size - self._start
        for name, e in header.items():
            try:
                dtype = DTYPES[e["dtype"]]
                shape = tuple(int(d) for d in e["shape"])
                lo, hi = (int(x) for x in e["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{self.path}: tensor {name!r} has a malformed header entry {e!r}") from None
            nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            if not (0 <= lo <= hi <= data and hi - lo == nbytes):
                raise ValueError(f"{self.path}: tensor {name!r} lies outside the file or has the wrong size "
                                 f"(offsets {lo}-{hi}, {nbytes} bytes expected, {data} bytes of data): truncated?")
            self.entries[name] = (dtype, shape, lo, hi)

    def __getitem__(self, name: str) -> torch.Tensor:
        dtype, shape, lo, hi = self.entries[name]
        buf = bytearray(hi - lo)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            view, pos = memoryview(buf), 0
            while pos < len(buf):
                got = os.preadv(fd, [view[pos:]], self._start + lo + pos)
                if got <= 0:
                    raise ValueError(f"{self.path}: tensor {name!r} is cut short (the file shrank?)")
                pos += got
        finally:
            os.close(fd)
        if not buf:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(buf, dtype=dtype).reshape(shape)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


class ShardedSafetensors(Mapping[str, torch.Tensor]):
    """The tensors of a model folder saved in shards (``model.safetensors.index.json``: tensor ->
    shard file), read lazily like :class:`SafetensorsFile`."""

    def __init__(self, index: str | os.PathLike) -> None:
        self.path = Path(index)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            weight_map = dict(data["weight_map"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{self.path} is not a safetensors index ({type(e).__name__}: {e})") from None
        shards = {f: SafetensorsFile(self.path.parent / f) for f in sorted(set(weight_map.values()))}
        self.metadata = {}
        self.entries = {}
        self._where: dict[str, SafetensorsFile] = {}
        for f in shards.values():  # the shards' own order, tensor by tensor
            for name, entry in f.entries.items():
                if weight_map.get(name) == f.path.name:
                    self.entries[name] = entry
                    self._where[name] = f
        missing = sorted(set(weight_map) - set(self.entries))
        if missing:
            raise ValueError(f"{self.path}: tensor {missing[0]!r} is not in its shard {weight_map[missing[0]]!r}")

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._where[name][name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def open_weights(path: str | os.PathLike) -> SafetensorsFile | ShardedSafetensors:
    """A model's tensors, lazily: a ``.safetensors`` file, or a model folder holding ``model.safetensors``
    or shards with ``model.safetensors.index.json`` (ValueError, one line, otherwise)."""
    p = Path(path)
    if p.is_dir():
        if (p / "model.safetensors").is_file():
            return SafetensorsFile(p / "model.safetensors")
        if (p / "model.safetensors.index.json").is_file():
            return ShardedSafetensors(p / "model.safetensors.index.json")
        raise ValueError(f"{p}: a model folder needs model.safetensors or model.safetensors.index.json "
                         "(pickled .bin weights are not read)")
    return SafetensorsFile(p)


class SafetensorsWriter:
    """Write a safetensors file whose tensors (names, dtypes, shapes, in order) are declared up front;
    :meth:`write` each in that order, then :meth:`close` (atomic: temporary file, fsync, rename)."""

    def __init__(self, path: str | os.PathLike, layout: Sequence[tuple[str, torch.dtype, tuple[int, ...]]],
                 metadata: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        header: dict[str, Any] = {}
        offset = 0
        self._order = []
        for name, dtype, shape in layout:
            nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            header[name] = {"dtype": CODES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            self._order.append((name, dtype, tuple(shape)))
            offset += nbytes
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent)
        self._f = os.fdopen(fd, "wb")
        self._f.write(struct.pack("<Q", len(text)) + text)
        self._next = 0

    def write(self, name: str, tensor: torch.Tensor) -> None:
        want_name, dtype, shape = self._order[self._next]
        if name != want_name or tuple(tensor.shape) != shape:
            raise ValueError(f"SafetensorsWriter: got {name!r} {tuple(tensor.shape)}, expected {want_name!r} {shape}")
        t = tensor.detach().to("cpu", dtype).contiguous()
        if t.numel():
            self._f.write(t.reshape(-1).view(torch.uint8).numpy().data)  # the tensor's own bytes, no copy
        self._next += 1

    def close(self) -> Path:
        if self._next != len(self._order):
            self.abort()
            raise ValueError(f"SafetensorsWriter: {len(self._order) - self._next} declared tensors were not written")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        Path(self._tmp).unlink(missing_ok=True)


def merge_files(op: str, sources: Sequence[str | os.PathLike], out: str | os.PathLike,
                base: str | os.PathLike | None = None, merge_seed: int = 0,
                metadata: Mapping[str, str] | None = None, **knobs) -> Path:
    """Merge the ``.safetensors`` checkpoints ``sources`` (and ``base``, for ops that take one) with
    merge op ``op`` and ``knobs`` (as :func:`evobench.merge.ops.merge_state_dicts` takes them) into
    ``out``, tensor by tensor. Ops that draw random masks (DARE) get one generator per (tensor,
    model) seeded from ``merge_seed``, as the ``ps`` space draws them. Each output tensor has its
    first source's dtype and shape."""
    import inspect

    from evobench.merge.ops import iter_merged
    from evobench.registry import MERGE_OPS

    files = [SafetensorsFile(p) for p in sources]
    if not files:
        raise ValueError("merge_files: no sources given")
    base_file = SafetensorsFile(base) if base is not None else None
    ref = files[0]
    for f in files[1:] + ([base_file] if base_file else []):
        if set(f.entries) != set(ref.entries):
            diff = sorted(set(f.entries) ^ set(ref.entries))[:3]
            raise ValueError(f"{f.path}: its tensors differ from {ref.path}'s ({diff})")
        bad = next((n for n in ref.entries if f.entries[n][1] != ref.entries[n][1]), None)
        if bad is not None:
            raise ValueError(f"{f.path}: tensor {bad!r} has shape {f.entries[bad][1]}, {ref.path} has "
                             f"{ref.entries[bad][1]}")
    fn = MERGE_OPS.get(op)
    if "generator" in inspect.signature(fn).parameters:
        from evobench.spaces.ps import mask_generators

        knobs["generator"] = mask_generators(merge_seed, ref.entries, len(files))
    layout = [(name, dtype, shape) for name, (dtype, shape, _, _) in ref.entries.items()]
    return write_stream(SafetensorsWriter(out, layout, metadata), iter_merged(fn, base_file, files, **knobs))


def write_stream(writer: SafetensorsWriter, tensors) -> Path:
    """Write ``(name, tensor)`` pairs as they come, then close; nothing is left if any of it fails."""
    try:
        for name, tensor in tensors:
            writer.write(name, tensor)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
