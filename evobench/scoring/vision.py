"""Model inputs of requests with images, through a Hugging Face processor (e.g. ``LlavaNextProcessor``).

A prompt's token ids come from the processor, which expands each ``<image>`` placeholder into as
many image tokens as the image needs (LLaVA-NeXT: a number that depends on the image's size) and
adds special tokens as its tokenizer does by default (LLaVA: BOS). They are computed once per
request and cached. Pixel inputs are recomputed for every batch by the processor's image processor
over the batch's images in order (it pads LLaVA-NeXT's tiles to the batch's largest count), so no
pixel tensors are kept between calls. Images are handed over as RGB ``PIL.Image`` objects and read
as channels-last arrays (a 1- or 3-pixel-high image would otherwise be taken for channels-first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from evobench.scoring.requests import GenerateRequest

Tokens = tuple[int, ...]


class VisionInputs:
    """Token ids (cached per request) and pixel inputs (per batch) of requests with images."""

    def __init__(self, processor: Any) -> None:
        for part in ("tokenizer", "image_processor"):
            if getattr(processor, part, None) is None:
                raise ValueError(f"the processor {type(processor).__name__} has no {part}")
        self.processor = processor
        self._ids: dict[GenerateRequest, Tokens] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def prompt(self, request: GenerateRequest) -> Tokens:
        """The prompt's token ids, image tokens expanded."""
        ids = self._ids.get(request)
        if ids is None:
            images = [im.open() for im in request.images]
            enc = self.processor(text=[request.prompt], images=images, return_tensors="pt",
                                 input_data_format="channels_last")
            ids = tuple(int(t) for t in enc["input_ids"][0].tolist())
            self._ids[request] = ids
        return ids

    def pixels(self, requests: Sequence[GenerateRequest], device: torch.device,
               dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        """The image processor's outputs for the requests' images, in order, on ``device`` (floating
        tensors in ``dtype``)."""
        images = [im.open() for r in requests for im in r.images]
        out = self.processor.image_processor(images=images, return_tensors="pt", input_data_format="channels_last")
        return {k: (v.to(device, dtype) if v.is_floating_point() and dtype is not None else v.to(device))
                for k, v in out.items()}
