"""image-prompt-mini: a tiny synthetic image world, a tiny CLIP and tiny text-to-image pipelines, all
trained in code once and cached, so that merging two specialist UNets has something to gain.

**The world.** 32 x 32 RGB images of one coloured shape (4 colours x 4 shapes, jittered in position
and size) on a dark background, each with an English and a Japanese caption: ``"a red circle"`` /
``"赤い丸"`` (:func:`render`, :func:`caption`).

**The judge.** An open_clip ``CLIP`` from a small config dict (32 px images, 8 px patches, 2 layers)
trained contrastively on the world's images against both captions (:func:`train_clip`): its CLIPScore
tells whether an image shows the prompt's colour and shape, in either language.

**The pipelines.** Real ``StableDiffusionPipeline`` s at toy size (:func:`evobench.models.tiny_diffusion.tiny_pipeline`'s
architecture): a frozen seeded CLIP text encoder, a VAE trained as an autoencoder on the world, and
three UNets (epsilon prediction, 8 x 8 latents):

- **base**: trained on the world with an empty prompt only: it draws coloured shapes, but not the one asked for;
- **en**: the base with only its encoder-side attention blocks (``Recipe.en_groups``: those of
  ``down_blocks.0`` and ``mid_block``) fine-tuned on the English captions: it follows English prompts;
- **ja**: the base with only its decoder-side attention blocks (``Recipe.ja_groups``: those of
  ``up_blocks.1``) fine-tuned on the Japanese captions: it follows Japanese prompts.

Each fine-tune also sees empty prompts (``p_empty``, for classifier-free guidance) and captions of
the other language paired with unrelated images (``p_other``): a specialist learns to leave a prompt
it was not trained to follow to the base. The two task vectors are exactly zero outside their own,
disjoint parameter groups, so adding both to the base keeps each skill where it was learnt.

The task's prompts are half English and half Japanese, so a merge of ``en`` and ``ja`` (task vectors
over the shared base) is what serves the whole split. Training runs on ``Recipe.threads`` torch threads with
fixed seeds (deterministic on a machine); the cache key hashes the recipe, the world's version and the
torch/diffusers/transformers/open_clip versions. Cache: ``$EVOBENCH_CACHE/image-prompt-mini/<key>/``
(``EVOBENCH_CACHE`` defaults to ``~/.cache/evobench``): ``recipe.json`` and ``clip``, ``vae``,
``text_encoder``, ``base``, ``en``, ``ja`` ``.safetensors`` -- no pickle. Needs the ``vision`` extra.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from evobench import trained_cache

WORLD_VERSION = 1
SIZE = 32
COLOURS = {"red": ("赤い", (0.90, 0.12, 0.10)), "green": ("緑の", (0.10, 0.75, 0.15)),
           "blue": ("青い", (0.15, 0.30, 0.95)), "yellow": ("黄色い", (0.95, 0.85, 0.10))}
SHAPES = {"circle": "丸", "square": "四角", "triangle": "三角", "cross": "十字"}
BACKGROUND = 0.08
CLIP_CONFIG = {"embed_dim": 64,
               "vision_cfg": {"image_size": SIZE, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
CLIP_TOKENIZER = "ViT-B-32"
UNET_NAMES = ("base", "en", "ja")
TRAINING_RUNS = {"count": 0}  # trainings run by this process (tests check the cache with it)
# (colour, shape, language, seed) of the task's prompts: every split has both languages, and no
# (colour, shape) pair of the test split is in the search split
SEARCH_PROMPTS = [("red", "circle", "en", 101), ("blue", "square", "ja", 102), ("green", "triangle", "en", 103),
                  ("yellow", "cross", "ja", 104), ("red", "square", "ja", 105), ("green", "cross", "en", 106),
                  ("blue", "triangle", "en", 107), ("yellow", "circle", "ja", 108)]
TEST_PROMPTS = [("blue", "circle", "en", 201), ("red", "triangle", "ja", 202), ("yellow", "square", "en", 203),
                ("green", "circle", "ja", 204), ("red", "cross", "en", 205), ("yellow", "triangle", "ja", 206),
                ("green", "square", "en", 207), ("blue", "cross", "ja", 208)]


def caption(colour: str, shape: str, language: str) -> str:
    """``"a red circle"`` (en) or ``"赤い丸"`` (ja)."""
    if language == "en":
        return f"a {colour} {shape}"
    if language == "ja":
        return COLOURS[colour][0] + SHAPES[shape]
    raise ValueError(f"language must be 'en' or 'ja', got {language!r}")


def render(colour: str, shape: str, dx: float = 0.0, dy: float = 0.0, radius: float = 10.0) -> np.ndarray:
    """The world's image of a ``colour`` ``shape`` centred at (16 + dx, 16 + dy): float32 (32, 32, 3) in [0, 1]."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    u, v = x - (SIZE / 2 + dx), y - (SIZE / 2 + dy)
    r = radius
    if shape == "circle":
        mask = u * u + v * v <= r * r
    elif shape == "square":
        mask = (np.abs(u) <= 0.85 * r) & (np.abs(v) <= 0.85 * r)
    elif shape == "triangle":  # apex up
        mask = (v <= 0.8 * r) & (v >= -r) & (np.abs(u) <= (v + r) * 0.55)
    elif shape == "cross":
        mask = ((np.abs(u) <= r / 3) & (np.abs(v) <= r)) | ((np.abs(v) <= r / 3) & (np.abs(u) <= r))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    img = np.full((SIZE, SIZE, 3), BACKGROUND, dtype=np.float32)
    img[mask] = COLOURS[colour][1]
    return img


def combos() -> list[tuple[str, str]]:
    return [(c, s) for c in COLOURS for s in SHAPES]


def world_sample(n: int, seed: int, shift: float = 4.0, radii: tuple[float, float] = (7.5, 11.0)
                 ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """``n`` images (uint8, (n, 32, 32, 3)) cycling over the 16 (colour, shape) pairs, each shifted by up
    to ``shift`` pixels and of a radius in ``radii``, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    pairs = [combos()[i % 16] for i in range(n)]
    imgs = np.stack([render(c, s, *rng.uniform(-shift, shift, 2), rng.uniform(*radii)) for c, s in pairs])
    return (imgs * 255).round().astype(np.uint8), pairs


@dataclass(frozen=True)
class Recipe:
    """How the mini CLIP, VAE and UNets are made (every field enters the cache key)."""

    seed: int = 0
    n_images: int = 1024
    clip_steps: int = 800
    clip_lr: float = 1e-3
    clip_batch: int = 64
    vae_steps: int = 300
    vae_lr: float = 3e-3
    base_steps: int = 600
    ft_steps: int = 400
    unet_lr: float = 2e-3
    ft_lr: float = 2e-3
    batch_size: int = 16  # VAE
    unet_batch: int = 64
    draw_shift: float = 1.0  # the pipelines' training images: less jitter than the judge's
    draw_radii: tuple[float, float] = (9.0, 10.5)
    p_empty: float = 0.15  # fine-tunes: share of empty prompts (classifier-free guidance)
    p_other: float = 0.15  # fine-tunes: share of the other language's captions, paired with random images
    # the UNet parameters each specialist fine-tunes (name prefixes; disjoint, the rest stays the base's)
    en_groups: tuple[str, ...] = ("down_blocks.0.attentions", "mid_block.attentions")
    ja_groups: tuple[str, ...] = ("up_blocks.1.attentions",)
    word_scale: float = 50.0  # the text encoder's word embeddings x this (see _template)
    threads: int = 1  # torch threads while training (the weights depend on it)

    def key(self) -> str:
        import diffusers
        import open_clip
        import transformers

        return trained_cache.recipe_key(self, world=WORLD_VERSION, torch=torch.__version__, diffusers=diffusers.__version__, transformers=transformers.__version__, open_clip=open_clip.__version__)



# --- the judge -------------------------------------------------------------------------------------

def _clip_model():
    from evobench.models.clip import import_open_clip

    return import_open_clip().CLIP(**CLIP_CONFIG)


def clip_scorer(state: dict[str, torch.Tensor], device="cpu"):
    """A :class:`~evobench.models.clip.ClipScorer` of the mini CLIP with weights ``state``."""
    from evobench.models.clip import ClipScorer, import_open_clip

    open_clip = import_open_clip()
    model = _clip_model()
    model.load_state_dict(state)
    preprocess = open_clip.image_transform(SIZE, is_train=False)
    return ClipScorer(model, preprocess, open_clip.get_tokenizer(CLIP_TOKENIZER), "image-prompt-mini", device)


def _clip_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, 32, 32, 3) -> the tensors open_clip's evaluation transform makes of 32 px PIL images."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def train_clip(recipe: Recipe, images: np.ndarray, pairs: list[tuple[str, str]]):
    """Contrastive training: each image against the 32 captions (16 pairs x 2 languages); a caption is
    right when it names the image's colour and shape."""
    from evobench.models.clip import import_open_clip

    TRAINING_RUNS["count"] += 1
    tok = import_open_clip().get_tokenizer(CLIP_TOKENIZER)
    texts = [caption(c, s, lang) for c, s in combos() for lang in ("en", "ja")]
    ids = tok(texts)
    target_pair = torch.tensor([combos().index(p) for p in pairs])
    text_pair = torch.arange(len(texts)) // 2
    pixels = _clip_pixels(images)
    model = _clip_model()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.clip_lr)
    gen = torch.Generator().manual_seed(recipe.seed + 10)
    losses = []
    model.train()
    for step in range(recipe.clip_steps):
        idx = torch.randint(len(pixels), (recipe.clip_batch,), generator=gen)
        img = model.encode_image(pixels[idx], normalize=True)
        txt = model.encode_text(ids, normalize=True)
        logits = model.logit_scale.exp() * img @ txt.T
        positive = (target_pair[idx][:, None] == text_pair[None, :]).float()
        loss_i = -(torch.log_softmax(logits, 1) * positive / positive.sum(1, keepdim=True)).sum(1).mean()
        # text side: each caption against the images of the batch that show it
        has = positive.sum(0) > 0
        loss_t = -(torch.log_softmax(logits.T[has], 1) * positive.T[has]
                   / positive.T[has].sum(1, keepdim=True)).sum(1).mean()
        loss = (loss_i + loss_t) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == recipe.clip_steps - 1:
            losses.append(round(float(loss.detach()), 4))
    return model.eval(), losses


# --- the pipelines ---------------------------------------------------------------------------------

def _template(recipe: Recipe):
    """:func:`~evobench.models.tiny_diffusion.tiny_pipeline` with a smaller VAE (3 levels of 16-32-32 channels)."""
    from evobench.models.diffusion import import_diffusers, rebuild_pipeline
    from evobench.models.tiny_diffusion import tiny_pipeline

    diffusers = import_diffusers()
    pipe = tiny_pipeline(seed=recipe.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed + 1)
        vae = diffusers.AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1,
            down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
            norm_num_groups=8, sample_size=SIZE)
    pipe = rebuild_pipeline(pipe, vae=vae.eval())
    # A seeded text encoder draws its token and position embeddings alike (std 0.02), so its hidden
    # states barely tell prompts apart (at the shape word, "a red circle" vs "a red square": cosine
    # 0.96). Scaling the word rows (not BOS/EOS, so the empty prompt keeps its states) lets words
    # dominate their positions (cosine 0.06 there).
    special = [pipe.tokenizer.bos_token_id, pipe.tokenizer.eos_token_id, pipe.tokenizer.pad_token_id]
    with torch.no_grad():
        w = pipe.text_encoder.get_input_embeddings().weight
        keep = w[special].clone()
        w.mul_(recipe.word_scale)
        w[special] = keep
    return pipe


def train_vae(vae, images: np.ndarray, recipe: Recipe) -> list[float]:
    """Autoencoder training (MSE on [-1, 1] pixels, a small KL term) of ``vae``."""
    TRAINING_RUNS["count"] += 1
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    opt = torch.optim.Adam(vae.parameters(), lr=recipe.vae_lr)
    gen = torch.Generator().manual_seed(recipe.seed + 20)
    losses = []
    vae.train()
    for step in range(recipe.vae_steps):
        x = x_all[torch.randint(len(x_all), (recipe.batch_size,), generator=gen)]
        dist = vae.encode(x).latent_dist
        z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=gen)
        rec = vae.decode(z).sample
        loss = torch.nn.functional.mse_loss(rec, x) + 1e-6 * dist.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == recipe.vae_steps - 1:
            losses.append(round(float(loss.detach()), 5))
    return losses


@torch.no_grad()
def _prompt_embeds(pipe, prompts: list[str]) -> torch.Tensor:
    """The text encoder's hidden states for ``prompts``, as the pipeline computes them."""
    tok = pipe.tokenizer
    ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    return pipe.text_encoder(ids)[0]


def train_unet(unet, latents: torch.Tensor, conds: torch.Tensor, choose, scheduler, steps: int, lr: float,
               batch_size: int, seed: int) -> list[float]:
    """Epsilon-prediction training: ``choose(idx, gen)`` gives each latent's prompt row of ``conds``."""
    TRAINING_RUNS["count"] += 1
    opt = torch.optim.Adam([p for p in unet.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n_t = scheduler.config.num_train_timesteps
    losses = []
    unet.train()
    for step in range(steps):
        idx = torch.randint(len(latents), (batch_size,), generator=gen)
        z0 = latents[idx]
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(n_t, (batch_size,), generator=gen)
        zt = scheduler.add_noise(z0, noise, t)
        pred = unet(zt, t, encoder_hidden_states=conds[choose(idx, gen)]).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append(round(float(loss.detach()), 4))
    unet.eval().requires_grad_(False)
    return losses


def trainable(unet, groups: tuple[str, ...]) -> int:
    """Let only the parameters whose names start with one of ``groups`` train; their count. A group
    that names no parameter is an error (a typo would silently freeze everything)."""
    names = [n for n, _ in unet.named_parameters()]
    for g in groups:
        if not any(n.startswith(g) for n in names):
            raise ValueError(f"image-prompt-mini: UNet parameter group {g!r} names no parameter")
    count = 0
    for n, p in unet.named_parameters():
        p.requires_grad_(n.startswith(tuple(groups)))
        count += p.numel() if p.requires_grad else 0
    return count


def train_all(recipe: Recipe) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Train the CLIP, the VAE and the three UNets (``recipe.threads`` torch threads); ``({component: state}, log)``."""
    import copy

    from diffusers import DDPMScheduler

    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        t0 = time.perf_counter()
        images, pairs = world_sample(recipe.n_images, recipe.seed)
        log: dict = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            clip, log["clip"] = train_clip(recipe, images, pairs)
            images, pairs = world_sample(recipe.n_images, recipe.seed + 1, recipe.draw_shift, recipe.draw_radii)
            pipe = _template(recipe)
            vae = pipe.vae
            log["vae"] = train_vae(vae, images, recipe)
            vae.eval().requires_grad_(False)
            with torch.no_grad():
                x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
                mean = vae.encode(x).latent_dist.mean
            scale = float(1.0 / mean.std())
            latents = mean * scale
            prompts = [""] + [caption(c, s, lang) for lang in ("en", "ja") for c, s in combos()]
            conds = _prompt_embeds(pipe, prompts)
            pair_index = torch.tensor([combos().index(p) for p in pairs])
            sched = DDPMScheduler.from_config(pipe.scheduler.config)
            unets = {"base": pipe.unet.requires_grad_(True)}
            log["base"] = train_unet(pipe.unet, latents, conds, lambda idx, g: torch.zeros(len(idx), dtype=torch.long),
                                     sched, recipe.base_steps, recipe.unet_lr, recipe.unet_batch, recipe.seed + 30)
            for k, name in enumerate(("en", "ja")):
                unet = copy.deepcopy(unets["base"])
                trainable(unet, recipe.en_groups if name == "en" else recipe.ja_groups)

                def choose(idx, g, own=1 + 16 * k, other=1 + 16 * (1 - k)):
                    # own caption of the image; or empty; or a random caption of the other language
                    # (its image is unrelated: the specialist learns to leave that language to the base)
                    u = torch.rand(len(idx), generator=g)
                    rnd = torch.randint(16, (len(idx),), generator=g)
                    return torch.where(u < recipe.p_empty, 0, torch.where(
                        u < recipe.p_empty + recipe.p_other, other + rnd, own + pair_index[idx]))

                log[name] = train_unet(unet, latents, conds, choose, sched, recipe.ft_steps, recipe.ft_lr,
                                       recipe.unet_batch, recipe.seed + 31 + k)
                unets[name] = unet
        log["seconds"] = round(time.perf_counter() - t0, 2)
        log["latent_scale"] = scale
        states = {"clip": clip.state_dict(), "vae": vae.state_dict(), "text_encoder": pipe.text_encoder.state_dict(),
                  **{n: u.state_dict() for n, u in unets.items()}}
        return states, log
    finally:
        torch.set_num_threads(threads)


def _save(folder: Path, recipe: Recipe, states: dict, log: dict) -> None:
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        (tmp / "recipe.json").write_text(json.dumps({"recipe": trained_cache.recipe_fields(recipe), "key": recipe.key(),
                                                     "training": log}, indent=1))
        for name, state in states.items():
            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / f"{name}.safetensors"))

    trained_cache.write_folder(folder, write, complete="recipe.json")


def load_or_train(recipe: Recipe | None = None) -> Path:
    """The cache folder of ``recipe`` (default :class:`Recipe`), training everything first if absent."""
    recipe = recipe or Recipe()
    folder = trained_cache.recipe_folder("image-prompt-mini", recipe)
    if not (folder / "recipe.json").exists():
        states, log = train_all(recipe)
        _save(folder, recipe, states, log)
    return folder


def _load(folder: Path, name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / f"{name}.safetensors"))


def mini_pipelines(folder: Path | None = None, recipe: Recipe | None = None):
    """``(base, {"en": ..., "ja": ...})``: pipelines sharing one text encoder, VAE, tokenizer and
    scheduler, differing in their UNets."""
    from evobench.models.diffusion import rebuild_pipeline

    recipe = recipe or Recipe()
    folder = folder or load_or_train(recipe)
    meta = json.loads((folder / "recipe.json").read_text())
    pipe = _template(recipe)
    pipe.vae.load_state_dict(_load(folder, "vae"))
    pipe.vae.register_to_config(scaling_factor=meta["training"]["latent_scale"])
    pipe.text_encoder.load_state_dict(_load(folder, "text_encoder"))
    pipe.unet.load_state_dict(_load(folder, "base"))
    out = {}
    for name in ("en", "ja"):
        import copy

        unet = copy.deepcopy(pipe.unet)
        unet.load_state_dict(_load(folder, name))
        out[name] = rebuild_pipeline(pipe, unet=unet.eval().requires_grad_(False))
    return pipe, out


@lru_cache(maxsize=1)
def mini_models():
    """``(clip scorer, base pipeline, {"en", "ja": pipeline})`` from the cache (trained on first use)."""
    folder = load_or_train()
    base, sources = mini_pipelines(folder)
    return clip_scorer(_load(folder, "clip")), base, sources


def mini_splits():
    """The task's prompts: 8 search and 8 test, half English and half Japanese."""
    from evobench.tasks.image_prompt_data import PromptExample

    return {split: [PromptExample(caption(c, s, lang), seed) for c, s, lang, seed in rows]
            for split, rows in (("search", SEARCH_PROMPTS), ("test", TEST_PROMPTS))}
