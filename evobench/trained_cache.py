"""Where the embedded suites keep the models they train in code once, and the key of a recipe.

``cache_root(name)`` is ``$EVOBENCH_CACHE`` (default ``~/.cache/evobench``) / ``name``. A recipe (a
frozen dataclass whose every field shapes the models) is cached under :func:`recipe_key`: a hash of
its fields and of the versions of what trains it, so that any change trains anew. Numbers are
keyed by value, not by spelling: ``Recipe(lr=1)`` and ``Recipe(lr=1.0)`` make the same models and
get the same key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_root(name: str) -> Path:
    """``$EVOBENCH_CACHE`` (default ``~/.cache/evobench``) / ``name``."""
    root = os.environ.get("EVOBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "evobench")
    return Path(root) / name


def recipe_folder(name: str, recipe: Any) -> Path:
    """Where suite ``name`` keeps the models of ``recipe``: ``cache_root(name) / recipe.key()``."""
    return cache_root(name) / recipe.key()


def recipe_fields(recipe: Any) -> dict[str, Any]:
    """The recipe's fields as JSON data, a field declared ``float`` always as a float."""
    out = dataclasses.asdict(recipe)
    for f in dataclasses.fields(recipe):
        value = out[f.name]
        if f.type in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
            out[f.name] = float(value)
    return out


def recipe_key(recipe: Any, **versions: str) -> str:
    """16 hex digits of the SHA-256 of the recipe's fields and ``versions`` (data format, packages)."""
    blob = json.dumps({"recipe": recipe_fields(recipe), **versions}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def lm_recipe_key(recipe: Any, data: str) -> str:
    """:func:`recipe_key` of a recipe that trains Hugging Face LMs: with the data format's version
    and the torch, transformers and tokenizers versions."""
    import tokenizers
    import torch
    import transformers

    return recipe_key(recipe, data=data, torch=torch.__version__, transformers=transformers.__version__,
                      tokenizers=tokenizers.__version__)


def check_layers(recipe: Any, *names: str) -> None:
    """``ValueError`` unless each field ``names`` of ``recipe`` lists decoder layers in
    ``0..recipe.layers - 1`` (at least one)."""
    for name in names:
        layers = getattr(recipe, name)
        if not layers or any(not 0 <= i < recipe.layers for i in layers):
            raise ValueError(f"Recipe.{name} must name decoder layers in 0..{recipe.layers - 1}, got {layers}")


def write_folder(folder: Path, write: Callable[[Path], None], complete: str) -> None:
    """Make cache folder ``folder`` atomically: ``write(tmp)`` fills a temporary sibling, renamed into
    place, so a reader never sees half a folder. When another process made it first (the rename
    fails and ``folder/complete`` exists), its copy is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        write(tmp)
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / complete).exists():
            raise


def save_lms(folder: Path, recipe: Any, tok, models: dict, log: dict, config_of: str, complete: str) -> None:
    """Cache trained models: ``tokenizer.json``, ``config.json`` (of ``models[config_of]``),
    ``recipe.json`` (fields, key, training log) and ``<name>.safetensors`` per model (a tied LM head
    is not stored twice)."""
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        tok.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / "config.json").write_text(models[config_of].config.to_json_string())
        (tmp / "recipe.json").write_text(json.dumps({"recipe": recipe_fields(recipe), "key": recipe.key(),
                                                     "training": log}, indent=1))
        for name, m in models.items():
            tied = bool(getattr(m.config, "tie_word_embeddings", False))
            save_file({k: v.contiguous() for k, v in m.state_dict().items() if k != "lm_head.weight" or not tied},
                      str(tmp / f"{name}.safetensors"))

    write_folder(folder, write, complete)


def load_llamas(folder: Path, names: tuple[str, ...]):
    """``(tokenizer, {name: LlamaForCausalLM})`` from a folder :func:`save_lms` wrote."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from evobench.models.tiny_lm import EOS, PAD

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(str(folder / "tokenizer.json")),
                                  eos_token=EOS, bos_token=EOS, pad_token=PAD, padding_side="left")
    config = LlamaConfig.from_dict(json.loads((folder / "config.json").read_text()))
    models = {}
    for name in names:
        m = LlamaForCausalLM(config)
        m.load_state_dict(load_file(str(folder / f"{name}.safetensors")), strict=not config.tie_word_embeddings)
        models[name] = m.eval()
    return tok, models
