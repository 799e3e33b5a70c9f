"""Tiny, real text-to-image pipelines built in code: Stable Diffusion's classes at toy size, no downloads.

:func:`tiny_pipeline` is a ``StableDiffusionPipeline`` of a ``UNet2DConditionModel`` (~0.8M
parameters, 8 x 8 latents), an ``AutoencoderKL`` (32 x 32 RGB images), a ``CLIPTextModel`` and the
real CLIP tokenizer (:func:`clip_tokenizer`: Stable Diffusion 1.x's vocabulary and merges, built from
the BPE file that open_clip ships), with a DDIM scheduler (deterministic: no noise after the first
latents). Weights are drawn from a seed with the global torch RNG left as it was.
:func:`tiny_sources` adds seeded perturbations to the base UNet: sources that share a base, as
fine-tunes of one model do. Their images are noise-like: these pipelines test the machinery, not
image quality. Requires the ``vision`` extra.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

import torch

from evobench.models.diffusion import import_diffusers, rebuild_pipeline

CONTEXT_LENGTH = 77
N_MERGES = 49152 - 256 - 2  # CLIP's vocabulary: 256 bytes x 2 (with "</w>"), these merges, 2 specials = 49,408


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def _bpe_file() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the tiny pipelines' tokenizer reads open_clip's BPE file: "
                                  "pip install -c constraints-vision.txt 'evobench[vision]'", name="open_clip_torch")
    return Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"


@lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    lines = gzip.decompress(_bpe_file().read_bytes()).decode("utf-8").split("\n")[1:N_MERGES + 1]
    merges = tuple(tuple(line.split()) for line in lines)
    chars = list(_bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def clip_tokenizer():
    """A transformers ``CLIPTokenizer`` with CLIP's vocabulary (the tokenizer of Stable Diffusion 1.x):
    its ids equal open_clip's ``SimpleTokenizer``'s; Japanese is read as bytes."""
    from transformers import CLIPTokenizer

    vocab, merges = _vocab_and_merges()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=CONTEXT_LENGTH)


def _seeded(seed: int, make):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def tiny_pipeline(seed: int = 0):
    """A tiny ``StableDiffusionPipeline`` (32 x 32 images) with weights drawn from ``seed``; eval mode, CPU."""
    diffusers = import_diffusers()
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = clip_tokenizer()
    unet = _seeded(seed, lambda: diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32))
    vae = _seeded(seed + 1, lambda: diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32, 64), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        norm_num_groups=32, sample_size=32))
    text = _seeded(seed + 2, lambda: CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=CONTEXT_LENGTH, projection_dim=32, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)))
    scheduler = diffusers.DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = diffusers.StableDiffusionPipeline(vae=vae.eval(), text_encoder=text.eval(), tokenizer=tok,
                                             unet=unet.eval(), scheduler=scheduler, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cpu")


def perturbed(pipe, seed: int, scale: float = 0.02):
    """A pipeline sharing every component of ``pipe`` but its UNet: a copy with N(0, scale^2) added to
    each weight (drawn from ``seed``)."""
    import copy

    unet = copy.deepcopy(pipe.unet)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)
    return rebuild_pipeline(pipe, unet=unet.eval().requires_grad_(False))


def tiny_sources(seed: int = 0, n: int = 2, scale: float = 0.02):
    """``(base, {"tiny-a": ..., "tiny-b": ...})``: a tiny pipeline and ``n`` perturbations of its UNet."""
    base = tiny_pipeline(seed)
    return base, {f"tiny-{chr(ord('a') + i)}": perturbed(base, seed=1000 + i, scale=scale) for i in range(n)}
