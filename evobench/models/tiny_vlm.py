"""Tiny, real vision-language models built in code: LLaVA and LLaVA-NeXT from configs, with processors.

For tests and examples that exercise the real Hugging Face classes (``LlavaForConditionalGeneration``,
``LlavaNextForConditionalGeneration``, their processors with Pillow image processors) without a
download. The language model inside is a ``MistralModel`` (as in LLaVA-1.6-Mistral), the vision tower
a two-layer CLIP encoder on 32 x 32 inputs; :func:`tiny_text_lm` builds a ``MistralForCausalLM`` of
the same text config, a stand-in for a language model from outside the VLM. Requires the ``llm``
extra and Pillow.
"""

from __future__ import annotations

IMAGE_TOKEN = "<image>"
IMAGE_SIZE, PATCH = 32, 8
GRID = [[32, 64], [64, 32], [64, 64]]


def tiny_vlm_tokenizer():
    """The tiny byte-level BPE tokenizer of :mod:`evobench.models.tiny_lm` plus the ``<image>`` token."""
    from evobench.models.tiny_lm import tiny_tokenizer

    tok = tiny_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return tok


def tiny_text_config(vocab_size: int, tokenizer, hidden: int = 32, layers: int = 2, heads: int = 4,
                     kv_heads: int = 2, intermediate: int = 64, max_positions: int = 512):
    """A ``MistralConfig`` sized for tests (no sliding window, untied head)."""
    from transformers import MistralConfig

    return MistralConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=max_positions, sliding_window=None,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)


def tiny_llava_config(tokenizer, next: bool = True, **text):
    """A ``LlavaNextConfig`` (``next=True``, any-resolution tiles) or ``LlavaConfig`` for tests.

    ``text`` overrides :func:`tiny_text_config`'s sizes (e.g. ``hidden=48``).
    """
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaNextConfig

    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                              image_size=IMAGE_SIZE, patch_size=PATCH, projection_dim=16)
    txt = tiny_text_config(len(tokenizer), tokenizer, **text)
    common = dict(vision_config=vision, text_config=txt, image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                  vision_feature_layer=-2, vision_feature_select_strategy="default")
    if next:
        return LlavaNextConfig(image_grid_pinpoints=GRID, **common)
    return LlavaConfig(**common)


def _seeded(cls, config, seed: int, std: float | None):
    import torch

    if std is not None:
        config.initializer_range = float(std)
        for sub in ("text_config", "vision_config"):
            if hasattr(config, sub):
                getattr(config, sub).initializer_range = float(std)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    return model.eval()


def tiny_llava(config, seed: int = 0, std: float | None = None):
    """A LLaVA(-NeXT) model of ``config`` in eval mode with weights drawn from ``seed`` (float32, CPU)."""
    from transformers import LlavaForConditionalGeneration, LlavaNextConfig, LlavaNextForConditionalGeneration

    cls = LlavaNextForConditionalGeneration if isinstance(config, LlavaNextConfig) else LlavaForConditionalGeneration
    return _seeded(cls, config, seed, std)


def tiny_text_lm(text_config, seed: int = 0, std: float | None = None):
    """A ``MistralForCausalLM`` of ``text_config`` (a language model from outside the VLM)."""
    import copy

    from transformers import MistralForCausalLM

    return _seeded(MistralForCausalLM, copy.deepcopy(text_config), seed, std)


def tiny_processor(tokenizer, config):
    """The processor of a tiny model of ``config``: Pillow image processor + ``tokenizer``."""
    from transformers import LlavaNextConfig, LlavaNextProcessor, LlavaProcessor
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    sizes = dict(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    common = dict(tokenizer=tokenizer, patch_size=PATCH, vision_feature_select_strategy="default",
                  num_additional_image_tokens=1, image_token=IMAGE_TOKEN)  # the CLIP tower's class token
    if isinstance(config, LlavaNextConfig):
        return LlavaNextProcessor(image_processor=LlavaNextImageProcessorPil(image_grid_pinpoints=GRID, **sizes),
                                  **common)
    return LlavaProcessor(image_processor=LlavaImageProcessorPil(**sizes), **common)
