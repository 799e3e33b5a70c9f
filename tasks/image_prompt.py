"""image-prompt: merge text-to-image pipelines (their UNets, in PS space) so that the images they draw
match Japanese and English prompts, judged by an open_clip model.

Models: diffusers pipelines (:mod:`evobench.models.diffusion`): ``models`` names local folders or hub
ids (one = scoring only, two or more = a merge problem; ``base`` = their shared ancestor for task
vectors), or, without ``models``, tiny pipelines built in code (:func:`~evobench.models.tiny_diffusion.tiny_sources`:
a seeded base and two perturbations of its UNet; noise-like images, for tests and smoke runs), or,
with ``mini=True``, the trained mini world of :mod:`evobench.tasks.image_prompt_mini` (its two
specialist pipelines, their base, its CLIP as the default judge and its prompts; ``steps`` 10 and
``guidance_scale`` 3.0 unless given). Only
the UNet is merged; text encoder, VAE, tokenizer and scheduler are the sources' shared ones.

Data (:mod:`evobench.tasks.image_prompt_data`): the built-in prompts, or ``data_dir`` (a folder with
``search.jsonl`` and ``test.jsonl``), or ``dataset`` (a Hugging Face hub data set id with the same columns,
``dataset_config`` its config, ``search_split`` / ``test_split`` its splits, default ``train`` / ``test``;
the reference column an Image feature, ``seed`` optional). ``data_dir`` and ``dataset`` exclude each other.

Generation is deterministic: every example has its own seed, the initial latents are drawn from a CPU
``torch.Generator`` seeded with it (the same latents on any device), and the pipeline's own scheduler
runs ``steps`` steps with classifier-free guidance ``guidance_scale`` at ``height`` x ``width`` (the
pipeline's default size when None). One image is generated and scored at a time, so an example's
score does not depend on which examples are scored with it. Images are scored as saved 8-bit RGB
(``round(255 * x)``, as diffusers makes PIL images).

Scores (``clip``: an open_clip spec, see :func:`evobench.models.clip.load_clip`; by default
``"ViT-B-32:openai"``, CLIPScore's model, for pipelines named in ``models`` and ``"tiny"`` for the
tiny in-code pipelines, which it scores offline and without meaning):

* ``clip_score``: CLIPScore ``max(100 * cos(image, prompt), 0)`` divided by 100, i.e. ``max(cos, 0)``:
  a fraction like every task's score, so tables (which show scores x 100) show CLIPScore itself;
* ``image_similarity``: the cosine of the image's embedding with its reference image's (the fitness
  of the M2N2 paper's diffusion experiment), on examples that have a reference;
* ``clip_score_ja`` / ``clip_score_en``: ``clip_score`` over the Japanese / English prompts.

``fitness="text"`` (default): per-example score = ``clip_score``, primary metric ``clip_score``;
``fitness="image"`` (every example needs a reference): per-example score = the cosine with the
reference, primary metric ``image_similarity``. When both splits hold prompts of both languages, the
behaviour descriptors (MAP-Elites) are the mean per-example score over the Japanese and over the
English prompts (0 where none were scored). Per-example records carry the prompt, seed, CLIPScore,
image similarity and the SHA-256 of the image's pixels. A metric with no examples (``image_similarity``
without references, a language without prompts) is left out of the metrics.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from evobench.errors import NonFiniteError
from evobench.metrics.clip import clip_score, cosine
from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.image_prompt_data import (
    SPLITS,
    PromptExample,
    builtin_splits,
    load_folder,
    load_hub_splits,
)
from evobench.tasks.lm_common import positive_int

FITNESS = {"text": "clip_score", "image": "image_similarity"}
MINI_STEPS = 10  # DDIM steps and guidance of the mini pipelines (image_prompt(mini=True))
MINI_GUIDANCE = 3.0
LANGUAGES = ("ja", "en")


class ImagePromptTask(Task):
    """Text-to-image prompts with seeds; each generated image scored by CLIP against its prompt (or reference)."""

    name = "image-prompt"
    metrics = ("clip_score", "image_similarity", "clip_score_ja", "clip_score_en")

    def __init__(self, data: dict[str, list[PromptExample]], scorer, fitness: str = "text", steps: int = 25,
                 guidance_scale: float = 7.5, height: int | None = None, width: int | None = None) -> None:
        self.data, self.scorer, self.fitness = data, scorer, fitness
        self.primary_metric = FITNESS[fitness]
        self.steps, self.guidance_scale, self.height, self.width = steps, guidance_scale, height, width
        # prompts and reference images do not change with the candidate: embedded once
        self.text_features = {s: scorer.text_features([ex.prompt for ex in exs]) for s, exs in data.items()}
        self.reference_features = {s: [None if ex.image is None else scorer.image_features([ex.image])[0]
                                       for ex in exs] for s, exs in data.items()}
        if all({ex.language for ex in exs} == set(LANGUAGES) for exs in data.values()):
            self.descriptor_names = ("score_ja", "score_en")
            self.descriptor_bounds = ((0.0, 1.0),) * 2 if fitness == "text" else ((-1.0, 1.0),) * 2

    def split_sizes(self) -> dict[str, int]:
        return {s: len(exs) for s, exs in self.data.items()}

    def generate(self, pipeline, example: PromptExample) -> np.ndarray:
        """The example's image as float32 ``(height, width, 3)`` in [0, 1]; NonFiniteError on NaN/inf."""
        import torch

        kwargs = {k: v for k, v in (("height", self.height), ("width", self.width)) if v is not None}
        out = pipeline(example.prompt, num_inference_steps=self.steps, guidance_scale=self.guidance_scale,
                       generator=torch.Generator("cpu").manual_seed(example.seed), output_type="np", **kwargs)
        image = np.asarray(out.images[0], dtype=np.float32)
        if not np.all(np.isfinite(image)):
            raise NonFiniteError(f"non-finite pixels in the image of prompt {example.prompt!r}")
        return image

    def images(self, pipeline, split: str, limit: int | None = None) -> list[Any]:
        """The generated images of ``split``'s first ``limit`` examples, as 8-bit RGB PIL images."""
        return [to_pil(self.generate(pipeline, ex)) for ex in self._examples(split, limit)]

    def image_captions(self, split: str, limit: int | None = None) -> list[str]:
        """The prompts of ``split``'s first ``limit`` examples (the columns of a comparison's image grid)."""
        return [ex.prompt for ex in self._examples(split, limit)]

    def _examples(self, split: str, limit: int | None) -> list[PromptExample]:
        if split not in self.data:
            raise ValueError(f"image-prompt: unknown split {split!r} (have: {', '.join(self.data)})")
        return self.data[split][:limit]

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        examples = self._examples(split, limit)
        clip, sims, records = [], [], []
        for i, ex in enumerate(examples):
            image = to_pil(self.generate(model, ex))
            feat = self.scorer.image_features([image])[0]
            cs = float(clip_score(feat, self.text_features[split][i])[0])
            ref = self.reference_features[split][i]
            sim = None if ref is None else float(cosine(feat, ref)[0])
            clip.append(cs / 100.0)
            sims.append(sim)
            records.append({"prompt": ex.prompt, "seed": ex.seed, "reference": ex.reference, "clip_score": cs,
                            "image_similarity": sim, "image_sha256": pixels_sha256(image)})
        scores = np.array(clip if self.fitness == "text" else sims, dtype=np.float64)
        groups = {"clip_score": clip, "image_similarity": [s for s in sims if s is not None],
                  **{f"clip_score_{lang}": [c for c, ex in zip(clip, examples, strict=True) if ex.language == lang]
                     for lang in LANGUAGES}}
        metrics = {k: float(np.mean(v)) for k, v in groups.items() if v}  # a metric with no examples is left out
        primary = self.aggregate(scores)
        metrics[self.primary_metric] = primary
        desc = None
        if self.descriptor_names:
            desc = np.array([np.mean([s for s, ex in zip(scores, examples, strict=True) if ex.language == lang] or [0.0])
                             for lang in LANGUAGES])
        return TaskResult(scores=scores, metrics=metrics, primary=primary, predictions=records,
                          descriptors=desc, n_forward=len(examples))

    def data_hash(self) -> str:
        h = hashlib.sha256()
        for s in SPLITS:
            for ex in self.data[s]:
                h.update(f"{s}\x00{ex.example_id}\x00".encode())
        return h.hexdigest()[:16]

    def example_ids(self, split: str) -> list[str]:
        """SHA-256 of each example's prompt, seed and reference image bytes."""
        return [ex.example_id for ex in self.data[split]]


def to_pil(image: np.ndarray):
    """A float image in [0, 1] as an 8-bit RGB PIL image (diffusers' rounding)."""
    from PIL import Image

    return Image.fromarray((image * 255).round().astype(np.uint8))


def pixels_sha256(image) -> str:
    """SHA-256 of an RGB PIL image's size and pixels."""
    return hashlib.sha256(f"{image.size}".encode() + image.tobytes()).hexdigest()


def _check_options(fitness, steps, guidance_scale, height, width, limit_search, limit_test) -> None:
    if fitness not in FITNESS:
        raise ValueError(f"fitness must be one of {', '.join(map(repr, FITNESS))}, got {fitness!r}")
    positive_int("steps", steps)
    positive_int("limit_search", limit_search, optional=True)
    positive_int("limit_test", limit_test, optional=True)
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, int | float) \
            or not math.isfinite(guidance_scale) or guidance_scale < 0:
        raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}")
    for k, v in (("height", height), ("width", width)):
        if v is not None and (positive_int(k, v) % 8):
            raise ValueError(f"{k} must be a multiple of 8 (diffusers' latent grid), got {v!r}")


def default_clip(models) -> str:
    """The scorer when ``clip`` is not given: the tiny in-code CLIP for the tiny in-code pipelines,
    open_clip's ViT-B-32 with OpenAI's weights (CLIPScore's model) for real pipelines."""
    return "tiny" if models is None else "ViT-B-32:openai"


def _check_models(models, base) -> None:
    if models is None:
        if base is not None:
            raise ValueError("base is given without models: the built-in tiny pipelines bring their own base")
        return
    if isinstance(models, str) or not isinstance(models, list | tuple) or not models \
            or not all(isinstance(m, str) and m for m in models):
        raise ValueError(f"models must be a non-empty list of pipeline folders or hub ids, got {models!r}")
    if base is not None and (not isinstance(base, str) or not base):
        raise ValueError(f"base must be a pipeline folder or hub id, got {base!r}")


def _check_data(data_dir, dataset, dataset_config, search_split, test_split) -> dict[str, Any]:
    """The hub options (config and splits, defaults filled in) once the data options are consistent."""
    hub_options = {"dataset_config": dataset_config, "search_split": search_split, "test_split": test_split}
    if dataset is None:
        given = [k for k, v in hub_options.items() if v is not None]
        if given:
            raise ValueError(f"{given[0]} is given without dataset (it names a part of a hub data set)")
        return {}
    if data_dir is not None:
        raise ValueError("data_dir and dataset are mutually exclusive: give a local folder or a hub data set, not both")
    if not isinstance(dataset, str) or not dataset.strip():
        raise ValueError(f"dataset must be a hub data set id, got {dataset!r}")
    search_split = "train" if search_split is None else search_split
    test_split = "test" if test_split is None else test_split
    for k, v in (("dataset_config", dataset_config), ("search_split", search_split), ("test_split", test_split)):
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise ValueError(f"{k} must be a non-empty string, got {v!r}")
    if search_split == test_split:
        raise ValueError(f"search_split and test_split are both {search_split!r}: the splits must differ")
    return {"config": dataset_config, "search_split": search_split, "test_split": test_split}


def _pool(models, base, device, dtype, mini=False):
    if mini:
        from evobench.models.diffusion import pool_from_pipelines
        from evobench.tasks.image_prompt_mini import mini_models

        _, base_pipe, sources = mini_models()
        return pool_from_pipelines({f"mini-{n}": p.to(device, dtype) for n, p in sources.items()},
                                   base_pipe.to(device, dtype))
    if models is None:
        from evobench.models.diffusion import pool_from_pipelines
        from evobench.models.tiny_diffusion import tiny_sources

        base_pipe, sources = tiny_sources()
        return pool_from_pipelines({n: p.to(device, dtype) for n, p in sources.items()}, base_pipe.to(device, dtype))
    from evobench.models.diffusion import load_pool

    return load_pool(list(models), base, dtype=dtype, device=device)


def image_prompt(models: list[str] | None = None, base: str | None = None, data_dir: str | None = None,
                 clip: str | None = None, fitness: str = "text", steps: int | None = None,
                 guidance_scale: float | None = None, height: int | None = None, width: int | None = None,
                 limit_search: int | None = None, limit_test: int | None = None, device: str = "cpu",
                 dtype: str = "float32", mini: bool = False, dataset: str | None = None,
                 dataset_config: str | None = None, search_split: str | None = None,
                 test_split: str | None = None) -> Problem:
    """Merge text-to-image UNets so images match Japanese and English prompts (open_clip CLIPScore).

    Or, with ``fitness="image"``, the reference images; options are in the module docstring.
    """
    if not isinstance(mini, bool):
        raise ValueError(f"mini must be true or false, got {mini!r}")
    if mini:
        for k, v in (("models", models), ("base", base), ("data_dir", data_dir), ("dataset", dataset)):
            if v is not None:
                raise ValueError(f"mini: true brings its own pipelines and prompts; {k} cannot be given")
        if fitness != "text":
            raise ValueError("mini: true has no reference images; fitness must be 'text'")
    steps = (MINI_STEPS if mini else 25) if steps is None else steps
    guidance_scale = (MINI_GUIDANCE if mini else 7.5) if guidance_scale is None else guidance_scale
    _check_options(fitness, steps, guidance_scale, height, width, limit_search, limit_test)
    _check_models(models, base)
    hub = _check_data(data_dir, dataset, dataset_config, search_split, test_split)
    from evobench.models.clip import load_clip
    from evobench.models.lm_loading import resolve_device, resolve_dtype

    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    if mini:
        from evobench.tasks.image_prompt_mini import mini_splits

        data = mini_splits()
    elif dataset is not None:
        data = load_hub_splits(dataset, **hub)
    else:
        data = builtin_splits() if data_dir is None else load_folder(data_dir)
    data = {SEARCH: data[SEARCH][:limit_search], TEST: data[TEST][:limit_test]}
    if fitness == "image":
        missing = [(s, i) for s in SPLITS for i, ex in enumerate(data[s]) if ex.image is None]
        if missing:
            s, i = missing[0]
            raise ValueError(f"fitness 'image' needs a reference image for every example; {s} example {i + 1} "
                             f"has none ({len(missing)} without one)")
    if mini and clip is None:
        from evobench.tasks.image_prompt_mini import mini_models

        scorer = mini_models()[0]
        scorer.model.to(dev)
        scorer.device = dev
    else:
        scorer = load_clip(default_clip(models) if clip is None else clip, device=dev)
    pool = _pool(models, base, dev, dt, mini)
    task = ImagePromptTask(data, scorer, fitness, steps, guidance_scale, height, width)
    for exs in data.values():  # the reference images are embedded: let their pixels go
        exs[:] = [PromptExample(ex.prompt, ex.seed, ex.reference, ex.reference_sha256) for ex in exs]
    return Problem("image-prompt", task, pool, baseline_defaults={"mutation_std": 0.0},
                   description="merge text-to-image UNets so their images match Japanese and English prompts")
