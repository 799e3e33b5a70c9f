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

Or the rows come from a Hugging Face hub data set (:func:`load_hub_splits`: id, optional config, one hub
split for search, default ``train``, one for test, default ``test``) with the same columns, read through
:func:`evobench.lmdata.source.load_hub` and checked row by row by the same :func:`check_example` as a
folder's rows; messages name ``hub:<id>[/<config>]/<split>`` and the row (1-based). On the hub:

* ``reference`` must be a ``datasets.Image`` feature; it is read as its encoded bytes
  (``Image(decode=False)``) and checked as above (an image feature holding a local file path, as
  ``datasets`` keeps downloaded image files, is read from that file); the example's ``reference`` is
  then ``hub:<id>[/<config>]/<split>/<row>``. A string column (a path or URL) is refused: nothing is
  fetched from the places it names;
* ``seed`` may be absent as a column: then row ``n`` of hub split ``s`` gets the seed
  :func:`default_seed` ``(s, n)``, the first 15 hex digits of SHA-256 of ``"<s>:<n>"`` read as an
  integer (0 <= seed < 2**60): the same row of the same split always gets the same seed;
* a column outside the schema is refused once, for the split;
* offline, or when the hub has no such data set, one line (:class:`~evobench.lmdata.source.DataUnavailableError`)
  names the id and says to pass ``data_dir`` instead.

Without a folder or a hub id the task uses :func:`builtin_splits`: 8 search and 8 test prompts, half in Japanese
and half in English (the Japanese ones mostly restate English ones of the other split's topics), each
with its own seed. Needs Pillow (the ``vision`` extra) only for reference images, and ``datasets`` for
the hub.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evobench.lmdata.source import DataFormatError, hub_source, load_hub, read_json_lines, row_error
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
    reference: str | None = None  # the path as given in the data file, or hub:<id>/<split>/<row> (None: none)
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


def check_example(row: Any, source: str, n: int, reference: Callable[[Any], tuple[str, str, bytes]]) -> PromptExample:
    """One example from ``row`` (a folder's or the hub's), every column checked; problems name ``source`` and row
    ``n``. ``reference(value)`` turns a non-null ``reference`` into ``(what the example keeps as its reference,
    the image's name in messages, encoded image bytes)`` or raises the row's one-line error."""
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
    kept, name, data = reference(ref)
    image, problem = open_image(data)
    if problem is not None:
        raise row_error(source, n, "reference", f"{name!r}: {problem}")
    return PromptExample(prompt, seed, kept, hashlib.sha256(data).hexdigest(), image)


def _check_no_overlap(search: list[PromptExample], test: list[PromptExample], test_source: str,
                      search_source: str) -> None:
    first = {}
    for i, ex in enumerate(search):
        first.setdefault(ex.example_id, i)
    for i, ex in enumerate(test):
        if ex.example_id in first:
            raise DataFormatError(f"{test_source}: example {i + 1} (prompt {ex.prompt!r}, seed {ex.seed}) "
                                  f"is also example {first[ex.example_id] + 1} of {search_source}")


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
        source = str(path)
        out[split] = [check_example(row, source, n, functools.partial(_file_reference, folder, source, n))
                      for n, row in read_json_lines(path)]
    _check_no_overlap(out[SEARCH], out[TEST], str(folder / "test.jsonl"), "search.jsonl")
    return out


def _file_reference(folder: Path, source: str, n: int, ref: Any) -> tuple[str, str, bytes]:
    if not isinstance(ref, str) or not ref.strip():
        raise row_error(source, n, "reference", f"expected an image path or null, got {ref!r}")
    path = folder / ref
    if not path.is_file():
        raise row_error(source, n, "reference", f"image file {str(path)!r} does not exist")
    return ref, str(path), path.read_bytes()


def default_seed(split: str, n: int) -> int:
    """The seed of row ``n`` (1-based) of hub split ``split`` when the data set has no ``seed`` column: the
    first 15 hex digits of SHA-256 of ``"<split>:<n>"`` as an integer (0 <= seed < 2**60)."""
    return int(hashlib.sha256(f"{split}:{n}".encode()).hexdigest()[:15], 16)


def _keep_reference_bytes(dataset: Any) -> Any:
    import datasets

    feature = dataset.features.get("reference")
    if isinstance(feature, datasets.Image):  # encoded bytes, decoded (and checked) here as folder images are
        return dataset.cast_column("reference", datasets.Image(decode=False))
    return dataset


def _hub_reference(source: str, n: int, ref: Any) -> tuple[str, str, bytes]:
    if isinstance(ref, str):
        raise row_error(source, n, "reference", f"got the string {ref!r}: on the hub the reference must be a "
                        "datasets Image feature (image bytes), paths and URLs are not read")
    if not isinstance(ref, dict) or set(ref) != {"bytes", "path"}:
        raise row_error(source, n, "reference", f"expected a datasets Image feature, got {type(ref).__name__}")
    name = f"{source}/{n}"
    if ref["bytes"] is not None:
        return name, name, ref["bytes"]
    path = ref["path"]  # a data set of image files: datasets keeps the downloaded file's local path
    if not isinstance(path, str) or not Path(path).is_file():
        raise row_error(source, n, "reference", f"image has no bytes and no local file (path {path!r})")
    return name, path, Path(path).read_bytes()


def load_hub_splits(dataset: str, config: str | None = None, search_split: str = "train",
                    test_split: str = "test") -> dict[str, list[PromptExample]]:
    """The examples of hub data set ``dataset`` (``config``): its split ``search_split`` as the search split,
    ``test_split`` as the test split (see the module docstring)."""
    out, sources = {}, {}
    for split, hub_split in ((SEARCH, search_split), (TEST, test_split)):
        rows = load_hub("image-prompt", dataset, config, hub_split, "",
                        prepare=_keep_reference_bytes,
                        instead="pass data_dir= a folder holding search.jsonl and test.jsonl")
        source = sources[split] = hub_source(dataset, config, hub_split)
        if not rows:
            raise DataFormatError(f"{source}: no rows")
        extra = sorted(set(rows[0]) - set(COLUMNS))  # rows of one data set share its columns
        if extra:
            raise DataFormatError(f"{source}: column {extra[0]!r}: not a column of the schema ({', '.join(COLUMNS)})")
        if "seed" not in rows[0]:
            rows = [{**row, "seed": default_seed(hub_split, n)} for n, row in enumerate(rows, start=1)]
        out[split] = [check_example(row, source, n, functools.partial(_hub_reference, source, n))
                      for n, row in enumerate(rows, start=1)]
    _check_no_overlap(out[SEARCH], out[TEST], sources[TEST], sources[SEARCH])
    return out
