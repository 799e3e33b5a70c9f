"""Shared parts of the vision tests: the skip when the vision extra is absent, small images and data folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

MISSING = [m for m in ("open_clip", "diffusers", "PIL") if importlib.util.find_spec(m) is None]
# every vision test module: `pytestmark = VISION`
VISION = [pytest.mark.vision,
          pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed: pip install -c "
                             "constraints-vision.txt 'evobench[vision]' (tox -e vision runs these tests)")]
OPTIONS = {"clip": "tiny", "steps": 2, "guidance_scale": 5.0}  # the image-prompt task at test speed


def save_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (40, 32), seed: int = 0) -> Path:
    """A seeded noise image in ``mode`` (8-bit modes, or I;16) written to ``path`` (format from the suffix)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))
    else:
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def write_split(folder: Path, split: str, rows: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                          encoding="utf-8")


def data_folder(folder: Path, search: list, test: list) -> Path:
    write_split(folder, "search", search)
    write_split(folder, "test", test)
    return folder
