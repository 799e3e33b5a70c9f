"""Where a JP-LMEH subtask's rows come from: a file under ``data_dir``, else the hub.

The JGLUE and MGSM sets use :mod:`evobench.lmdata`'s loaders. MARC-ja, JAQKET v2, XL-Sum (ja) and
XWinograd (ja) are read as JSON lines in the schema of their hub data sets (the ones the harness
reads), one file per data set, checked row by row (one-line errors naming file, row and column).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evobench.tasks.lm_common import find_data, optional_path

JGLUE_FILES = {
    "jcqa": (["jcommonsenseqa-valid-v1.3.json", "jcommonsenseqa-valid-v1.1.json"], "jcommonsenseqa-v1.3"),
    "jnli": (["jnli-valid-v1.3.json", "jnli-valid-v1.1.json"], "jnli-v1.3"),
    "jsquad": (["jsquad-valid-v1.3.json", "jsquad-valid-v1.1.json"], "jsquad-v1.3"),
}


def data_root(data_dir: Any) -> Path | None:
    """The ``data_dir`` option as an existing directory, or None (read the hub)."""
    return optional_path("data_dir", data_dir, "dir")


def jglue_file(data_dir: Any, key: str, task: str) -> Path | None:
    """The JGLUE validation file of ``key`` under ``data_dir`` (or its ``jglue/`` folder); None: the hub."""
    names, folder = JGLUE_FILES[key]
    return find_data(data_root(data_dir), task, names, ["jglue"],
                     f"yahoojapan/JGLUE datasets/{folder}/valid-v1.3.json (saved as {names[0]})")


def mgsm_folder(data_dir: Any, task: str) -> tuple[Path | None, Path | None]:
    """``(mgsm_ja.tsv, mgsm_exemplars_ja_en.json)`` under ``data_dir`` or its ``mgsm/`` folder; None: the hub."""
    root = data_root(data_dir)
    origin = "google-research/url-nlp mgsm/"
    return (find_data(root, task, ["mgsm_ja.tsv"], ["mgsm"], origin + "mgsm_ja.tsv"),
            find_data(root, task, ["mgsm_exemplars_ja_en.json"], ["mgsm"],
                      "the MGSM exemplars (" + origin + "exemplars.py) as mgsm_exemplars_ja_en.json"))


def _dict_of_texts(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("text"), list) and value["text"] \
            and all(isinstance(t, str) for t in value["text"]):
        return None
    return "expected an object with a non-empty 'text' list of strings"


def hub_schema_rows(data_dir: Any, task: str, file_name: str, folder: str, origin: str, hub_id: str,
                    config: str | None, split: str, schema: dict) -> list[dict[str, Any]]:
    """Rows of ``file_name`` (JSON lines) under ``data_dir`` or its ``folder``, else of the hub split."""
    from evobench.lmdata.source import check_row, hub_source, load_hub, read_json_lines

    path = find_data(data_root(data_dir), task, [file_name], [folder], f"{origin} as JSON lines")
    if path is not None:
        return [check_row(row, schema, str(path), n) for n, row in read_json_lines(path)]
    rows = load_hub(task, hub_id, config, split, f"{file_name} ({origin} as JSON lines)")
    return [check_row(row, schema, hub_source(hub_id, config, split), n) for n, row in enumerate(rows, start=1)]


def texts(value: Any) -> str | None:
    """A row check: ``{"text": [str, ...], ...}`` (hub form of answers and contexts)."""
    return _dict_of_texts(value)
