"""Benchmark rows for the language-model tasks, as plain lists of dicts.

Each loader reads a local file (or a folder holding it) when given ``path``, else the Hugging Face
hub through the optional ``datasets`` package; offline, with no local copy, it raises a one-line
:class:`DataUnavailableError` that says which file to give. Rows are checked on the way in: a
missing column or a bad value is a one-line :class:`DataFormatError` naming the file, the row and
the column. ``fewshot`` holds the harness's few-shot draw and the pool rule for files that come
without a train split. ``vqa`` reads the Japanese VQA sets, their images checked by ``images``.
"""

from evobench.lmdata.fewshot import FEWSHOT_SEED, POOL_SIZE, draw_fewshot, fewshot_indices, split_fewshot_pool
from evobench.lmdata.jglue import JNLI_LABELS, load_jcola, load_jcommonsenseqa, load_jnli, load_jsquad
from evobench.lmdata.mgsm import load_gsm8k_ja, load_mgsm, load_mgsm_exemplars
from evobench.lmdata.source import DataFormatError, DataUnavailableError, LMDataError
from evobench.lmdata.vqa import load_ja_vg_vqa, load_ja_vlm_wild

__all__ = [
    "FEWSHOT_SEED",
    "JNLI_LABELS",
    "POOL_SIZE",
    "DataFormatError",
    "DataUnavailableError",
    "LMDataError",
    "draw_fewshot",
    "fewshot_indices",
    "load_gsm8k_ja",
    "load_ja_vg_vqa",
    "load_ja_vlm_wild",
    "load_jcola",
    "load_jcommonsenseqa",
    "load_jnli",
    "load_jsquad",
    "load_mgsm",
    "load_mgsm_exemplars",
    "split_fewshot_pool",
]
