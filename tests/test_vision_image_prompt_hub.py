"""image-prompt data from the Hugging Face hub: a small in-memory ``datasets.Dataset`` in the real schema
(PNG bytes in an Image feature) stands in for ``load_dataset``; its examples must equal a folder's with the
same rows, and its problems must be the folder's one-line errors naming ``hub:<id>/<split>`` and the row."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from tests.vision_helpers import OPTIONS, VISION, data_folder, save_image

pytestmark = VISION
datasets = pytest.importorskip("datasets")

HUB_ID = "org/prompts"


def png_bytes(seed: int, size=(40, 32)) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def hub_split(rows: list[dict]) -> datasets.Dataset:
    """A Dataset in the hub schema: ``reference`` an Image feature (PNG bytes) when any row has one."""
    columns = {k: [r.get(k) for r in rows] for k in dict.fromkeys(k for r in rows for k in r)}
    features = {"prompt": datasets.Value("string")}
    if "seed" in columns:
        features["seed"] = datasets.Value("int64")
    if "reference" in columns:
        columns["reference"] = [None if b is None else {"bytes": b, "path": None} for b in columns["reference"]]
        features["reference"] = datasets.Image()
    for k in columns:
        features.setdefault(k, datasets.Value("string"))
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


@pytest.fixture
def hub(monkeypatch):
    """``hub(splits)`` makes ``datasets.load_dataset(HUB_ID, config, split=s)`` return ``splits[s]``;
    the calls are recorded."""
    calls = []

    def install(splits: dict[str, datasets.Dataset]):
        def load_dataset(path, name=None, split=None, **kwargs):
            calls.append((path, name, split))
            if path != HUB_ID:
                raise datasets.exceptions.DatasetNotFoundError(f"Dataset '{path}' doesn't exist on the Hub")
            return splits[split]

        monkeypatch.setattr(datasets, "load_dataset", load_dataset)
        return calls

    return install


SEARCH_ROWS = [("ソファの上で眠る猫", 3, 1), ("a red bicycle", 7, None), ("a bowl of ramen", 11, 2)]
TEST_ROWS = [("浜辺を走る犬", 5, 3), ("a lighthouse at sunset", 2**62, None)]


def _hub_rows(rows):
    return [{"prompt": p, "seed": s, "reference": None if r is None else png_bytes(r)} for p, s, r in rows]


def _folder_rows(folder, rows):
    out = []
    for p, s, r in rows:
        row = {"prompt": p, "seed": s}
        if r is not None:
            (folder / f"ref{r}.png").write_bytes(png_bytes(r))
            row["reference"] = f"ref{r}.png"
        out.append(row)
    return out


def test_hub_examples_equal_the_folder_examples_of_the_same_rows(tmp_path, hub):
    from evobench.tasks.image_prompt_data import load_folder, load_hub_splits

    calls = hub({"train": hub_split(_hub_rows(SEARCH_ROWS)), "validation": hub_split(_hub_rows(TEST_ROWS))})
    got = load_hub_splits(HUB_ID, "ja", search_split="train", test_split="validation")
    assert calls == [(HUB_ID, "ja", "train"), (HUB_ID, "ja", "validation")]
    want = load_folder(data_folder(tmp_path, _folder_rows(tmp_path, SEARCH_ROWS), _folder_rows(tmp_path, TEST_ROWS)))
    for split, rows in (("search", SEARCH_ROWS), ("test", TEST_ROWS)):
        assert [(ex.prompt, ex.seed) for ex in got[split]] == [(p, s) for p, s, _ in rows]
        assert [ex.example_id for ex in got[split]] == [ex.example_id for ex in want[split]]
        for (_, _, r), h, f in zip(rows, got[split], want[split], strict=True):
            if r is None:
                assert h.image is None and h.reference is None and h.reference_sha256 is None
                continue
            assert h.reference_sha256 == hashlib.sha256(png_bytes(r)).hexdigest() == f.reference_sha256
            assert h.reference == f"hub:{HUB_ID}/ja/{'train' if split == 'search' else 'validation'}/" \
                                  f"{[x[2] for x in rows].index(r) + 1}"
            pixels = np.random.default_rng(r).integers(0, 256, (32, 40, 3), dtype=np.uint8)
            assert np.array_equal(np.asarray(h.image), pixels) and np.array_equal(np.asarray(f.image), pixels)


def test_without_a_seed_column_each_row_gets_the_documented_seed(hub):
    from evobench.tasks.image_prompt_data import load_hub_splits

    hub({"train": hub_split([{"prompt": "a cat"}, {"prompt": "a dog"}]),
         "test": hub_split([{"prompt": "a fox"}])})
    data = load_hub_splits(HUB_ID)

    def documented(split, n):  # the module docstring: first 15 hex digits of SHA-256 of "<split>:<row>"
        return int(hashlib.sha256(f"{split}:{n}".encode()).hexdigest()[:15], 16)

    assert [ex.seed for ex in data["search"]] == [documented("train", 1), documented("train", 2)]
    assert [ex.seed for ex in data["test"]] == [documented("test", 1)]
    assert len({ex.seed for exs in data.values() for ex in exs}) == 3


def test_an_image_feature_holding_a_local_path_is_read_from_that_file(tmp_path, hub):
    from evobench.tasks.image_prompt_data import load_hub_splits

    path = save_image(tmp_path / "cat.png", seed=4)
    train = datasets.Dataset.from_dict(
        {"prompt": ["a cat"], "seed": [1], "reference": [str(path)]},
        features=datasets.Features({"prompt": datasets.Value("string"), "seed": datasets.Value("int64"),
                                    "reference": datasets.Image()}))
    hub({"train": train, "test": hub_split([{"prompt": "a dog", "seed": 2}])})
    ex = load_hub_splits(HUB_ID)["search"][0]
    assert ex.reference_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    from PIL import Image

    with Image.open(path) as im:
        assert np.array_equal(np.asarray(ex.image), np.asarray(im.convert("RGB")))


OK = {"prompt": "a cat", "seed": 1}


@pytest.mark.parametrize("bad, match", [
    ({"prompt": "x", "seed": 3, "reference": "images/cat.png"},
     r"^hub:org/prompts/train: row 2: column 'reference': got the string 'images/cat\.png': on the hub the "
     r"reference must be a datasets Image feature \(image bytes\), paths and URLs are not read$"),
    ({"prompt": "x", "seed": 3, "reference": "https://example.org/cat.png"},
     r"^hub:org/prompts/train: row 2: column 'reference': got the string 'https://example\.org/cat\.png'"),
    ({"prompt": "x", "seed": -1}, r"^hub:org/prompts/train: row 2: column 'seed': expected an integer 0 <= seed"),
    ({"prompt": " ", "seed": 3}, r"^hub:org/prompts/train: row 2: column 'prompt': expected a non-empty string"),
    ({"prompt": "x", "seed": 3, "refrence": b"png"},
     r"^hub:org/prompts/train: column 'refrence': not a column of the schema \(prompt, seed, reference\)$"),
    ({"prompt": "x", "seed": 3, "reference": b"not an image at all"},
     r"^hub:org/prompts/train: row 2: column 'reference': 'hub:org/prompts/train/2': unreadable image"),
    ({"prompt": "x", "seed": 3, "reference": png_bytes(0, size=(8, 8))},
     r"^hub:org/prompts/train: row 2: column 'reference': .* 8 x 8 pixels is smaller than 16 pixels on a side$"),
])
def test_bad_hub_rows_are_one_line_naming_the_hub_split_and_row(hub, bad, match):
    from evobench.lmdata.source import DataFormatError
    from evobench.tasks.image_prompt_data import load_hub_splits

    rows = [dict(OK), bad]
    if isinstance(bad.get("reference"), str) or "refrence" in bad:  # string columns, as a hub data set has them
        train = datasets.Dataset.from_dict({k: [r.get(k) for r in rows] for k in bad})
    else:
        train = hub_split(rows)
    hub({"train": train, "test": hub_split([{"prompt": "a dog", "seed": 2}])})
    with pytest.raises(DataFormatError, match=match) as info:
        load_hub_splits(HUB_ID)
    assert "\n" not in str(info.value)


def test_an_example_in_both_hub_splits_is_refused(hub):
    from evobench.lmdata.source import DataFormatError
    from evobench.tasks.image_prompt_data import load_hub_splits

    hub({"train": hub_split([OK]), "test": hub_split([{"prompt": "a dog", "seed": 2}, dict(OK)])})
    with pytest.raises(DataFormatError, match=r"^hub:org/prompts/test: example 2 \(prompt 'a cat', seed 1\) "
                                              r"is also example 1 of hub:org/prompts/train$"):
        load_hub_splits(HUB_ID)


@pytest.mark.parametrize("error", [ConnectionError("Couldn't reach 'org/prompts' on the Hub (LocalEntryNotFoundError)"),
                                   "not found"])
def test_offline_or_unknown_is_one_line_naming_the_id_and_data_dir(monkeypatch, error):
    from evobench.lmdata.source import DataUnavailableError
    from evobench.tasks.image_prompt_data import load_hub_splits

    def load_dataset(path, name=None, split=None, **kwargs):
        if error == "not found":
            raise datasets.exceptions.DatasetNotFoundError(f"Dataset '{path}' doesn't exist on the Hub")
        raise error

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(DataUnavailableError, match=r"^image-prompt: org/prompts \(config ja\), split train cannot be "
                                                   r"loaded from the hub \(.*\); pass data_dir= a folder holding "
                                                   r"search\.jsonl and test\.jsonl$") as info:
        load_hub_splits(HUB_ID, "ja")
    assert "\n" not in str(info.value)


def _factory(**options):
    from evobench.tasks.image_prompt import image_prompt

    return image_prompt(**{**OPTIONS, **options})


def test_the_task_reads_the_hub_like_a_folder(tmp_path, hub):
    rows = [(p, s, i + 1) for i, (p, s, _) in enumerate(SEARCH_ROWS)], [(p, s, 7 + i) for i, (p, s, _) in
                                                                      enumerate(TEST_ROWS)]
    hub({"train": hub_split(_hub_rows(rows[0])), "test": hub_split(_hub_rows(rows[1]))})
    from_hub = _factory(dataset=HUB_ID, fitness="image", limit_test=1)
    from_folder = _factory(data_dir=str(data_folder(tmp_path, _folder_rows(tmp_path, rows[0]),
                                                    _folder_rows(tmp_path, rows[1]))), fitness="image", limit_test=1)
    for split in ("search", "test"):
        assert from_hub.task.example_ids(split) == from_folder.task.example_ids(split)
    assert from_hub.task.split_sizes() == {"search": 3, "test": 1}
    for a, b in zip(from_hub.task.reference_features["search"], from_folder.task.reference_features["search"],
                    strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("options, match", [
    ({"dataset": HUB_ID, "data_dir": "prompts"}, r"^data_dir and dataset are mutually exclusive"),
    ({"search_split": "train"}, r"^search_split is given without dataset"),
    ({"dataset_config": "ja"}, r"^dataset_config is given without dataset"),
    ({"dataset": HUB_ID, "search_split": "test"}, r"^search_split and test_split are both 'test'"),
    ({"dataset": ""}, r"^dataset must be a hub data set id, got ''"),
    ({"dataset": HUB_ID, "test_split": 3}, r"^test_split must be a non-empty string, got 3"),
    ({"dataset": HUB_ID, "mini": True}, r"^mini: true brings its own pipelines and prompts; dataset cannot be given"),
])
def test_bad_data_options_are_one_line_value_errors(hub, options, match):
    calls = hub({})
    with pytest.raises(ValueError, match=match) as info:
        _factory(**options)
    assert "\n" not in str(info.value) and calls == []
