"""Image grids of a comparison: for a task that offers images, one PNG per task whose rows are the
source models and each baseline's recommended model (first seed) and whose columns are the test
examples, so that a user sees what the merges draw.

A task offers images by having a method ``images(model, split, limit=None)`` that returns the
model's images of the split's first ``limit`` examples as RGB PIL images of one size (the
``image-prompt`` task does). :func:`task_images` finds the hook; :func:`grid` lays the images out:
each image is enlarged ``scale`` times (nearest neighbour, so every source pixel becomes a
``scale`` x ``scale`` block of the same value), tile ``(r, c)``'s top-left corner is
:func:`tile_origin`, the rows are labelled on the left (ASCII; other characters are shown as ``?``)
and the columns numbered on top (1, 2, ...). The labels and prompts are in a JSON legend beside the
PNG (:func:`legend`).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

GRID_SCALE = 3  # each image pixel becomes a 3 x 3 block
PAD = 4
HEADER = 14  # height of the column-number row
LABEL_WIDTH = 150  # width of the row-label column
CHAR = 6  # Pillow's default bitmap font: ~6 pixels per character


def file_name(task: str) -> str:
    """``task`` as a file name (characters other than letters, digits and ``._+=@-`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._+=@-]+", "_", task)[:150]


def task_images(task: Any) -> Callable | None:
    """The task's ``images(model, split, limit=None)`` hook, or None when it offers none."""
    hook = getattr(task, "images", None)
    return hook if callable(hook) else None


def tile_origin(row: int, col: int, tile: tuple[int, int], scale: int) -> tuple[int, int]:
    """(x, y) of the top-left pixel of tile ``(row, col)`` for images of ``tile`` = (width, height)."""
    w, h = tile
    return LABEL_WIDTH + PAD + col * (w * scale + PAD), HEADER + PAD + row * (h * scale + PAD)


def grid_size(n_rows: int, n_cols: int, tile: tuple[int, int], scale: int) -> tuple[int, int]:
    """(width, height) of the grid in pixels."""
    x, y = tile_origin(n_rows, n_cols, tile, scale)
    return x, y


def grid(rows: Sequence[tuple[str, Sequence[Any]]], scale: int = 3):
    """An RGB PIL image: one row per ``(label, images)``, every row with the same number of images of
    one size (ValueError otherwise)."""
    from PIL import Image, ImageDraw

    if not rows or not rows[0][1]:
        raise ValueError("an image grid needs at least one row with at least one image")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    n_cols = len(rows[0][1])
    tile = rows[0][1][0].size
    for label, images in rows:
        if len(images) != n_cols:
            raise ValueError(f"image grid: row {label!r} has {len(images)} images, the first row {n_cols}")
        for im in images:
            if im.size != tile or im.mode != "RGB":
                raise ValueError(f"image grid: row {label!r} has a {im.mode} image of {im.size}, "
                                 f"expected RGB of {tile}")
    out = Image.new("RGB", grid_size(len(rows), n_cols, tile, scale), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for c in range(n_cols):
        x, _ = tile_origin(0, c, tile, scale)
        draw.text((x, 2), str(c + 1), fill=(0, 0, 0))
    max_chars = (LABEL_WIDTH - PAD) // CHAR
    for r, (label, images) in enumerate(rows):
        _, y = tile_origin(r, 0, tile, scale)
        text = "".join(ch if " " <= ch <= "~" else "?" for ch in label)[:max_chars]
        draw.text((PAD, y + (tile[1] * scale) // 2 - 5), text, fill=(0, 0, 0))
        for c, im in enumerate(images):
            big = np.repeat(np.repeat(np.asarray(im), scale, axis=0), scale, axis=1)
            out.paste(Image.fromarray(big), tile_origin(r, c, tile, scale))
    return out


def legend(rows: Sequence[str], columns: Sequence[str], tile: tuple[int, int], scale: int) -> dict[str, Any]:
    """What the grid shows: row labels, column captions (e.g. prompts), and where tile (0, 0) lies."""
    return {"rows": list(rows), "columns": list(columns), "tile_size": list(tile), "scale": scale,
            "tile_origin": {"first": list(tile_origin(0, 0, tile, scale)),
                            "step": [tile[0] * scale + PAD, tile[1] * scale + PAD]}}


def write_png(path: Path, image: Any) -> None:
    """Save PIL ``image`` as PNG at ``path`` atomically (a temporary sibling renamed into place):
    never half a PNG."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
