"""open_clip models as image scorers: CLIPScore (image-text) and image-image cosine similarity.

A :class:`ClipScorer` holds an open_clip model in eval mode, its evaluation image transform and its
tokenizer. :meth:`ClipScorer.clip_scores` gives CLIPScore, ``max(100 * cos(image, text), 0)``;
:meth:`ClipScorer.image_similarities` the cosine between two images' embeddings (the fitness of the
M2N2 paper's diffusion experiment). The arithmetic is :mod:`evobench.metrics.clip`.

Images are encoded one at a time, so an image's features never depend on which other images are
scored with it (CPU kernels may round differently at another batch size): scoring the first ``n``
examples gives exactly the first ``n`` scores of the whole split.

:func:`load_clip` takes a spec:

* ``"tiny"``: an open_clip ``CLIP`` built from a small config (64-wide, 2 layers, 64 px images) with
  weights drawn from a fixed seed, and the ViT-B-32 tokenizer that open_clip ships. Offline and
  fast, for tests; its scores carry no meaning.
* ``"NAME:TAG"``, e.g. ``"ViT-B-32:openai"``: an open_clip architecture with a pretrained tag
  (``open_clip.list_pretrained()``). The weights are the tag's safetensors file on the Hugging Face
  hub (read from the local cache, else downloaded); without network or a cached copy, one line names
  the repository and file to download.
* ``"NAME:/path/to/weights.safetensors"``: the architecture with weights from a local file.

Pickled checkpoints (``.bin``, ``.pt``, ...) are refused. The OpenAI CLIP tokenizer reads Japanese as
bytes; for Japanese prompts a multilingual model (e.g. ``xlm-roberta-base-ViT-B-32:laion5b_s13b_b90k``,
whose tokenizer transformers loads from the hub or its cache) is the better judge. Needs the
``vision`` extra (open_clip_torch).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evobench.metrics.clip import clip_score, cosine
from evobench.models.lm_loading import PICKLE_SUFFIXES, ModelLoadError, resolve_device

TINY = "tiny"
TINY_CONFIG = {"embed_dim": 64,
               "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
TINY_TOKENIZER = "ViT-B-32"  # open_clip's bundled CLIP BPE (vocabulary 49,408)
HF_SAFE_WEIGHTS = "open_clip_model.safetensors"  # open_clip's safetensors name for a hub repo's weights


def import_open_clip():
    """``open_clip``, or a ModuleNotFoundError naming the extra (``pip install 'evobench[vision]'``)."""
    try:
        import open_clip
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("open_clip", "torchvision"):
            raise
        raise ModuleNotFoundError(f"scoring images needs open_clip and torchvision ({e.name} is missing): "
                                  "pip install -c constraints-vision.txt 'evobench[vision]'",
                                  name="open_clip_torch") from None
    return open_clip


class ClipScorer:
    """An open_clip model, its evaluation transform and tokenizer, on ``device``."""

    def __init__(self, model, preprocess, tokenizer, name: str, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.preprocess, self.tokenizer, self.name = preprocess, tokenizer, name

    @torch.no_grad()
    def image_features(self, images: Sequence[Any]) -> np.ndarray:
        """Raw (unnormalised) embeddings of PIL images, ``(n, d)`` float64, one image per forward pass."""
        rows = [self.model.encode_image(self.preprocess(im).unsqueeze(0).to(self.device))[0] for im in images]
        return _stack(rows)

    @torch.no_grad()
    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        """Raw embeddings of texts, ``(n, d)`` float64, one text per forward pass."""
        rows = [self.model.encode_text(self.tokenizer([t]).to(self.device))[0] for t in texts]
        return _stack(rows)

    def clip_scores(self, images: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        """CLIPScore ``max(100 * cos, 0)`` of each image with the text at the same position."""
        return clip_score(self.image_features(images), self.text_features(texts))

    def image_similarities(self, images: Sequence[Any], references: Sequence[Any]) -> np.ndarray:
        """Cosine similarity of each image's embedding with the reference image's at the same position."""
        return cosine(self.image_features(images), self.image_features(references))


def _stack(rows: list[torch.Tensor]) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0))
    return torch.stack(rows).to(torch.float64).cpu().numpy()


def tiny_clip(seed: int = 0, device: str | torch.device = "cpu") -> ClipScorer:
    """The ``"tiny"`` scorer: :data:`TINY_CONFIG` with weights drawn from ``seed`` (the global torch RNG
    is left as it was)."""
    open_clip = import_open_clip()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(**TINY_CONFIG)
    preprocess = open_clip.image_transform(TINY_CONFIG["vision_cfg"]["image_size"], is_train=False)
    return ClipScorer(model, preprocess, open_clip.get_tokenizer(TINY_TOKENIZER), TINY, device)


def _safetensors_name(filename: str) -> str:
    """The safetensors file open_clip looks for in place of a hub repo's ``filename``."""
    if not filename or filename == "open_clip_pytorch_model.bin":
        return HF_SAFE_WEIGHTS
    stem, dot, suffix = filename.rpartition(".")
    return f"{stem}.safetensors" if dot and f".{suffix}" in PICKLE_SUFFIXES else filename


def _is_path(tag: str) -> bool:
    return tag.endswith(".safetensors") or os.sep in tag or tag.startswith(("~", "."))


def pretrained_weights(name: str, tag: str, local_files_only: bool = False) -> str:
    """The local safetensors file of ``name``'s weights ``tag`` (a pretrained tag or a file path)."""
    if tag.endswith(PICKLE_SUFFIXES):
        raise ModelLoadError(f"CLIP weights {tag!r}: pickled checkpoints are not read (they can run code); "
                             "convert them to .safetensors")
    if _is_path(tag):
        path = Path(tag).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"CLIP weights file {tag!r} does not exist")
        if path.suffix != ".safetensors":
            raise ModelLoadError(f"CLIP weights file {tag!r} is not a .safetensors file")
        return str(path)
    open_clip = import_open_clip()
    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = [t for n, t in open_clip.list_pretrained() if n == name]
        raise ModelLoadError(f"open_clip has no pretrained weights {tag!r} for {name!r} "
                             f"(it has: {', '.join(tags) or 'none; see open_clip.list_pretrained()'})")
    hub = cfg.get("hf_hub", "")
    if not hub:
        raise ModelLoadError(f"CLIP weights {name}:{tag} are published only at {cfg.get('url')!r}, not as "
                             f"safetensors on the hub: convert them and pass {name}:/path/to/weights.safetensors")
    repo, filename = os.path.split(hub)
    safe = _safetensors_name(filename)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return hf_hub_download(repo, safe, local_files_only=local_files_only)
    except LocalEntryNotFoundError:
        raise ModelLoadError(f"CLIP weights {name}:{tag} are not available offline: download {safe} of the hub "
                             f"repository {repo} into the Hugging Face cache (huggingface-cli download {repo} "
                             f"{safe}), or pass {name}:/path/to/{safe}") from None
    except (EntryNotFoundError, RepositoryNotFoundError) as e:
        raise ModelLoadError(f"CLIP weights {name}:{tag}: the hub has no {repo}/{safe} "
                             f"({type(e).__name__}); evobench reads safetensors only") from None


def load_clip(spec: str = TINY, device: str | torch.device = "cpu", local_files_only: bool = False) -> ClipScorer:
    """A scorer from a spec: ``"tiny"``, ``"NAME:TAG"`` or ``"NAME:/path/weights.safetensors"``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"clip must be 'tiny', 'NAME:TAG' or 'NAME:/path/weights.safetensors', got {spec!r}")
    if spec == TINY:
        return tiny_clip(device=device)
    name, sep, tag = spec.partition(":")
    if not sep or not name or not tag:
        raise ValueError(f"clip {spec!r}: expected 'NAME:TAG' (e.g. 'ViT-B-32:openai') or "
                         "'NAME:/path/weights.safetensors' or 'tiny'")
    open_clip = import_open_clip()
    if name not in open_clip.list_models():
        raise ValueError(f"clip {spec!r}: open_clip has no model {name!r} (see open_clip.list_models())")
    weights = pretrained_weights(name, tag, local_files_only)
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=weights, **({} if _is_path(tag) else _tag_options(open_clip, name, tag)))
    try:
        tokenizer = open_clip.get_tokenizer(name)
    except OSError as e:  # an HF tokenizer that is neither cached nor downloadable
        raise ModelLoadError(f"clip {spec!r}: its tokenizer cannot be loaded "
                             f"({' '.join(str(e).split('. ')[0].split())})") from None
    return ClipScorer(model, preprocess, tokenizer, spec, device)


def _tag_options(open_clip, name: str, tag: str) -> dict[str, Any]:
    """What a pretrained tag sets besides the weights (image mean/std, interpolation, QuickGELU)."""
    cfg = open_clip.get_pretrained_cfg(name, tag)
    out: dict[str, Any] = {}
    for key, arg in (("mean", "image_mean"), ("std", "image_std"), ("interpolation", "image_interpolation"),
                     ("resize_mode", "image_resize_mode")):
        if cfg.get(key) is not None:
            out[arg] = cfg[key]
    if cfg.get("quick_gelu"):
        out["force_quick_gelu"] = True
    return out
