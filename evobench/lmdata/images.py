"""Images of the vision-language benchmarks: encoded bytes, checked once, opened as RGB when scored.

An :class:`ImageInput` holds an image file's encoded bytes (JPEG, PNG, ...) and their SHA-256. It is
frozen and hashable by that digest, so scoring requests that carry it stay plain data and equal
images are one key. :func:`checked_image` reads and checks an image on the way in, so that a bad
image is a one-line :class:`~evobench.lmdata.source.DataFormatError` naming the file, the row and
the column before any model is scored:

* no data, a missing file, or bytes Pillow cannot decode: "unreadable";
* a mode with no faithful 8-bit RGB conversion (``I``, ``I;16``, ``F``, ...): 32-bit, 16-bit and
  float images are refused rather than clipped;
* an aspect ratio above :data:`MAX_ASPECT` (e.g. a 1 x 1000 strip): image processors scale the short
  side to the model's input size, so such an image grows to hundreds of megapixels;
* Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) applies as Pillow sets it.

Accepted modes (1, L, LA, P, PA, RGB, RGBA, RGBX, CMYK, YCbCr) are converted to RGB with Pillow's
``convert("RGB")`` when opened (alpha dropped), as the LLaVA image processors do. A multi-frame file
(an animated GIF) is read as its first frame. Needs Pillow (the ``vlm`` extra).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evobench.lmdata.source import DataFormatError

MAX_ASPECT = 20.0
RGB_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")


@dataclass(frozen=True)
class ImageInput:
    """An encoded image file (``data``) known by its SHA-256 (``sha256``); equal digests are equal images."""

    sha256: str
    data: bytes = field(repr=False, compare=False)
    size: tuple[int, int] = field(default=(0, 0), compare=False)  # (width, height) in pixels

    def open(self):
        """The image as a ``PIL.Image`` in RGB mode."""
        from PIL import Image

        with Image.open(io.BytesIO(self.data)) as im:
            return im.convert("RGB")


def _pil():
    try:
        from PIL import Image, UnidentifiedImageError
    except ModuleNotFoundError:
        raise ModuleNotFoundError("reading images needs the optional package pillow: pip install 'evobench[vlm]'",
                                  name="pillow") from None
    return Image, UnidentifiedImageError


def image_problem(data: bytes) -> tuple[str | None, tuple[int, int]]:
    """What is wrong with an encoded image (None when it can be used), and its (width, height)."""
    Image, UnidentifiedImageError = _pil()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode, (w, h) = im.mode, im.size
    except Image.DecompressionBombError as e:
        return f"image too large ({' '.join(str(e).split())})", (0, 0)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        # Pillow's decoders report corrupt or truncated data with these types
        reason = " ".join(str(e).split()) or type(e).__name__
        return f"unreadable image ({reason})", (0, 0)
    if mode not in RGB_MODES:
        return (f"image mode {mode!r} is not supported (8-bit {', '.join(RGB_MODES)} images are; "
                "save it as 8-bit RGB)"), (w, h)
    if max(w, h) > MAX_ASPECT * min(w, h):
        return (f"image of {w} x {h} pixels has an aspect ratio above {MAX_ASPECT:g}:1 "
                "(image processors would scale its long side far beyond the model's input size)"), (w, h)
    return None, (w, h)


def checked_image(value: Any, source: str, row: int | str, column: str = "image",
                  folder: Path | None = None, unit: str = "row") -> ImageInput:
    """An :class:`ImageInput` from a row's image value, or a one-line DataFormatError.

    ``value`` is the encoded bytes, a ``{"bytes": ..., "path": ...}`` record (the hub's parquet form;
    bytes win, else the path is read), or a path (a string; relative paths are read from ``folder``).
    """
    where = f"{source}: {unit} {row}: column {column!r}"
    data: bytes | None = None
    if isinstance(value, dict):
        data = value.get("bytes")
        if data is None and value.get("path"):
            value = value["path"]
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    if data is None and isinstance(value, str) and value.strip():
        path = Path(value).expanduser()
        if not path.is_absolute() and folder is not None:
            path = folder / path
        if not path.is_file():
            raise DataFormatError(f"{where}: image file {str(path)!r} does not exist")
        data = path.read_bytes()
    if data is None:
        raise DataFormatError(f"{where}: expected image bytes, a {{'bytes', 'path'}} record or a file path, "
                              f"got {type(value).__name__}")
    if not data:
        raise DataFormatError(f"{where}: empty image data")
    problem, size = image_problem(data)
    if problem is not None:
        raise DataFormatError(f"{where}: {problem}")
    return ImageInput(hashlib.sha256(data).hexdigest(), data, size)
