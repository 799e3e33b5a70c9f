"""image-prompt data: prompts with seeds (and optional reference images), checked on the way in.

A data folder holds ``search.jsonl`` and ``test.jsonl``; each line is one example::

    {"prompt": "ソファの上で眠る猫", "seed": 3, "reference": "images/cat.jpg"}

``prompt`` (a non-empty string, any language) and ``seed`` (an integer, 0 <= seed < 2**63: the seed of
the example's initial latents) are required; ``reference`` is optional: the path of a reference image,
relative to the folder. Any other key is an error (a misspelt ``reference`` must not silently mean
"no reference"). Every problem is one line naming the file, the row and the column:

* a missing file, or bytes Pillow cannot decode: refused;
* image modes with an 8-bit RGB reading (``1``, ``L``, ``LA``, ``P``, ``PA``, ``RGB``, ``RGBA``, ``RGBX``,
  ``CMYK``, ``YCbCr``) are converted to RGB with Pillow (alpha dropped; palette images through RGBA);
  16-bit, 32-bit and float images (``I;16``, ``I``, ``F``) are refused rather than clipped;
* images with a side under :data:`MIN_SIDE` pixels, or an aspect ratio above :data:`MAX_ASPECT` (CLIP
  sees the centre square of an image: above 4:1 it would see under a quarter of it), are refused;
* a multi-frame file (an animated GIF) is read as its first frame;
* an example that is in both splits (same prompt, seed and reference image) is refused.

Without a folder the task uses :func:`builtin_splits`: 8 search and 8 test prompts, half in Japanese
and half in English (the Japanese ones mostly restate English ones of the other split's topics), each
with its own seed. Needs Pillow (the ``vision`` extra) only for reference images.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evobench.lmdata.source import DataFormatError, read_json_lines, row_error
from evobench.task import SEARCH, TEST

SPLITS = (SEARCH, TEST)
COLUMNS = ("prompt", "seed", "reference")
MIN_SIDE = 16
MAX_ASPECT = 4.0
RGB_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")

BUILTIN = {
    SEARCH: [("a cat sleeping on a red sofa", 11), ("ソファの上で眠る猫", 12),
             ("a bowl of ramen with a boiled egg", 13), ("ゆで卵がのったラーメン", 14),
             ("a red bicycle leaning against a white wall", 15), ("桜の木の下にある木のベンチ", 16),
             ("a lighthouse on a rocky coast at sunset", 17), ("雪が積もった神社の赤い鳥居", 18)],
    TEST: [("a dog running on a sandy beach", 21), ("浜辺を走る犬", 22),
           ("a plate of sushi on a wooden table", 23), ("湖の向こうに見える富士山", 24),
           ("a green train crossing a stone bridge", 25), ("夜の東京の街並み", 26),
           ("a child flying a kite in a park", 27), ("抹茶と和菓子がのったお盆", 28)],
}


@dataclass(frozen=True)
class PromptExample:
    """One example: a prompt, the seed of its initial latents, and optionally a reference image
    (RGB, kept only until its features are computed) with the SHA-256 of its file."""

    prompt: str
    seed: int
    reference: str | None = None  # the path as given in the data file (None: no reference image)
    reference_sha256: str | None = None
    image: Any = field(default=None, compare=False, repr=False)

    @property
    def example_id(self) -> str:
        """SHA-256 of prompt, seed and reference image bytes: equal inputs, equal ids."""
        blob = f"{self.prompt}\x00{self.seed}\x00{self.reference_sha256 or ''}"
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def language(self) -> str:
        """``ja`` when the prompt has kana or kanji, else ``en``."""
        return "ja" if JAPANESE.search(self.prompt) else "en"


def builtin_splits() -> dict[str, list[PromptExample]]:
    """The built-in prompts (no reference images)."""
    return {s: [PromptExample(p, seed) for p, seed in rows] for s, rows in BUILTIN.items()}


def _pil():
    try:
        from PIL import Image, UnidentifiedImageError
    except ModuleNotFoundError:
        raise ModuleNotFoundError("reading reference images needs Pillow: pip install 'evobench[vision]'",
                                  name="pillow") from None
    return Image, UnidentifiedImageError


def open_image(data: bytes):
    """``(RGB PIL image, None)`` from encoded bytes, or ``(None, what is wrong)``."""
    import io

    Image, UnidentifiedImageError = _pil()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.seek(0)
            im.load()
            mode, (w, h) = im.mode, im.size
            if mode not in RGB_MODES:
                return None, (f"image mode {mode!r} is not 8-bit RGB-convertible ({', '.join(RGB_MODES)} are); "
                              "save it as 8-bit RGB")
            rgb = (im.convert("RGBA") if mode in ("P", "PA") else im).convert("RGB")
    except Image.DecompressionBombError as e:
        return None, f"image too large ({' '.join(str(e).split())})"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:  # Pillow's corrupt-data errors
        return None, f"unreadable image ({' '.join(str(e).split()) or type(e).__name__})"
    if min(w, h) < MIN_SIDE:
        return None, f"image of {w} x {h} pixels is smaller than {MIN_SIDE} pixels on a side"
    if max(w, h) > MAX_ASPECT * min(w, h):
        return None, (f"image of {w} x {h} pixels has an aspect ratio above {MAX_ASPECT:g}:1 "
                      "(CLIP would see only its centre square)")
    return rgb, None


def _example(row: Any, source: str, n: int, folder: Path) -> PromptExample:
    if not isinstance(row, dict):
        raise DataFormatError(f"{source}: row {n}: expected a JSON object, got {type(row).__name__}")
    extra = sorted(set(row) - set(COLUMNS))
    if extra:
        raise row_error(source, n, extra[0], f"not a column of the schema ({', '.join(COLUMNS)})")
    prompt, seed, ref = row.get("prompt"), row.get("seed"), row.get("reference")
    if not isinstance(prompt, str) or not prompt.strip():
        raise row_error(source, n, "prompt", f"expected a non-empty string, got {prompt!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise row_error(source, n, "seed", f"expected an integer 0 <= seed < 2**63, got {seed!r}")
    if ref is None:
        return PromptExample(prompt, seed)
    if not isinstance(ref, str) or not ref.strip():
        raise row_error(source, n, "reference", f"expected an image path or null, got {ref!r}")
    path = folder / ref
    if not path.is_file():
        raise row_error(source, n, "reference", f"image file {str(path)!r} does not exist")
    data = path.read_bytes()
    image, problem = open_image(data)
    if problem is not None:
        raise row_error(source, n, "reference", f"{str(path)!r}: {problem}")
    return PromptExample(prompt, seed, ref, hashlib.sha256(data).hexdigest(), image)


def load_folder(data_dir: str | Path) -> dict[str, list[PromptExample]]:
    """The examples of ``data_dir/search.jsonl`` and ``data_dir/test.jsonl`` (see the module docstring)."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataFormatError(f"data_dir {str(folder)!r} is not a folder (it must hold search.jsonl and test.jsonl)")
    out = {}
    for split in SPLITS:
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise DataFormatError(f"data_dir {str(folder)!r} has no {split}.jsonl (one JSON object per line: "
                                  f"{', '.join(COLUMNS)})")
        out[split] = [_example(row, str(path), n, folder) for n, row in read_json_lines(path)]
    search = {ex.example_id: i for i, ex in enumerate(out[SEARCH])}
    for i, ex in enumerate(out[TEST]):
        if ex.example_id in search:
            raise DataFormatError(f"{folder / 'test.jsonl'}: example {i + 1} (prompt {ex.prompt!r}, seed {ex.seed}) "
                                  f"is also example {search[ex.example_id] + 1} of search.jsonl")
    return out
