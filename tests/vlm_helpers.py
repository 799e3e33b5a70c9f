"""Helpers for the vision-language tests: tiny LLaVA models saved to folders, and small generated data
sets in the hub schemas of JA-VG-VQA-500 and JA-VLM-Bench-In-the-Wild."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

QUESTIONS = ["この写真には何が写っていますか？", "空は何色ですか？", "猫はどこにいますか？", "何人いますか？"]
ANSWERS = ["犬が写っています。", "青色です。", "机の上です。", "二人です。"]


def encoded_image(seed: int, size: tuple[int, int] = (40, 60), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    """A random image (height, width) in ``mode``, encoded as ``fmt``."""
    from PIL import Image

    pixels = (np.random.default_rng(seed).random((*size, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(pixels).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def vg_rows(n: int, first_id: int = 0) -> list[dict]:
    """JA-VG-VQA-500 rows: image bytes, image_id and two question/answer pairs (only the first is used)."""
    return [{"image": {"bytes": encoded_image(first_id + i), "path": None}, "image_id": first_id + i,
             "qas": [{"qa_id": 10 * i, "question": QUESTIONS[i % 4], "answer": ANSWERS[i % 4]},
                     {"qa_id": 10 * i + 1, "question": "二つ目の質問", "answer": "使われません"}]}
            for i in range(n)]


def wild_rows(n: int, first_seed: int = 500) -> list[dict]:
    """JA-VLM-Bench-In-the-Wild rows: question, answer, image bytes (two questions per image)."""
    return [{"question": QUESTIONS[i % 4], "answer": ANSWERS[i % 4],
             "image": {"bytes": encoded_image(first_seed + i // 2), "path": None}} for i in range(n)]


def write_parquet(rows: list[dict], path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def make_data_dir(root: Path, n_train: int = 4, n_test: int = 5, n_wild: int = 4) -> Path:
    """``root`` laid out as the tasks' ``data_dir``: hub downloads of both data sets (parquet)."""
    write_parquet(vg_rows(n_train, 0), root / "ja-vg-vqa-500" / "data" / "train-00000-of-00001.parquet")
    write_parquet(vg_rows(n_test, 100), root / "ja-vg-vqa-500" / "data" / "test-00000-of-00001.parquet")
    write_parquet(wild_rows(n_wild), root / "ja-vlm-bench-in-the-wild" / "data" / "test-00000-of-00001.parquet")
    return root


def tiny_models(next: bool = True, lm_seed: int = 2, **text):
    """``(vlm, processor, outside lm, lm tokenizer)``: a tiny LLaVA(-NeXT) and a Mistral LM of its text config."""
    from evobench.models.tiny_lm import tiny_tokenizer
    from evobench.models.tiny_vlm import (
        tiny_llava,
        tiny_llava_config,
        tiny_processor,
        tiny_text_lm,
        tiny_vlm_tokenizer,
    )

    tok = tiny_vlm_tokenizer()
    config = tiny_llava_config(tok, next=next, **text)
    vlm = tiny_llava(config, seed=1, std=0.2)
    lm = tiny_text_lm(config.text_config, seed=lm_seed, std=0.2)
    return vlm, tiny_processor(tok, config), lm, tiny_tokenizer()


def save_tiny_models(root: Path) -> tuple[str, str]:
    """A tiny LLaVA-NeXT (+ processor) and a tiny outside LM (+ tokenizer) saved as model folders."""
    vlm, processor, lm, lm_tok = tiny_models()
    vlm.save_pretrained(root / "vlm")
    processor.save_pretrained(root / "vlm")
    lm.save_pretrained(root / "lm")
    lm_tok.save_pretrained(root / "lm")
    return str(root / "vlm"), str(root / "lm")
