"""ja-vlm-mini models: a tiny LLaVA and two tiny Mistral LMs trained in code, once, and cached.

All share one byte-level BPE tokenizer (trained on the recipe's texts; every kana/kanji a token of its
own, ``<image>`` an added special token, BOS prepended) and one text config (``MistralConfig``):

- **base** (a ``MistralForCausalLM``): pretrained from a seeded random init on text only (loss on
  every token): the ja-vqa prompt with the object described in words where the image would be
  (``red circle`` or ``赤い丸``), the question in English or Japanese, always answered in the English
  frame (``赤い丸 is in the picture.``). It has never seen an image.
- **en** (the VLM specialist, a ``LlavaForConditionalGeneration``): the base as its language model,
  a CLIP vision tower and projector from a seeded random init; the vision tower, the projector and
  the language model's lower decoder layers (``en_layers``, default 0 and 1) are fine-tuned on images
  asked about in Japanese and answered in the English frame (``赤い丸 is in the picture.``): it sees,
  but its answers are English sentences.
- **ja** (the Japanese LM specialist, a ``MistralForCausalLM``): the base with only its upper decoder
  layers (``ja_layers``, default 3) fine-tuned on the same kind of text-only examples answered in
  Japanese alone (``赤い丸``, loss on the answer only): it answers in Japanese, but has never seen an
  image.

The two task vectors of the language model live in disjoint layers, and the vision tower and
projector are the VLM's (kept by every merge of the VLM family). Training runs on one torch thread
with fixed seeds and data order; the cache key hashes the recipe, the data version and the
torch/transformers/tokenizers versions. Cache folder: ``$EVOBENCH_CACHE/ja-vlm-mini/<key>/``
(``EVOBENCH_CACHE`` defaults to ``~/.cache/evobench``) holding ``tokenizer.json``, ``config.json``
(the LLaVA config), ``recipe.json`` and ``{base,en,ja}.safetensors`` -- no pickle.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from evobench import trained_cache
from evobench.tasks.ja_vlm_mini_data import QUESTION_JA, scenes, text_examples

DATA_VERSION = 4
MODEL_NAMES = ("base", "en", "ja")
TRAINING_RUNS = {"count": 0}  # training stages run by this process (tests check the cache with it)
LM_PREFIX, VLM_LM_PREFIX = "model.", "model.language_model."


@dataclass(frozen=True)
class Recipe:
    """How the three models are made (every field enters the cache key)."""

    vocab_size: int = 400
    hidden: int = 64
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    seed: int = 0
    n_texts: int = 4000  # text-only training examples per stage
    n_images: int = 3000  # image training examples of the VLM specialist
    base_steps: int = 400
    en_steps: int = 600
    ja_steps: int = 200
    base_lr: float = 3e-3
    en_lr: float = 2e-3
    ja_lr: float = 3e-3
    batch_size: int = 32
    en_layers: tuple[int, ...] = (0, 1)  # the decoder layers the VLM specialist fine-tunes
    ja_layers: tuple[int, ...] = (3,)  # the decoder layers the Japanese specialist fine-tunes

    def __post_init__(self) -> None:
        trained_cache.check_layers(self, "en_layers", "ja_layers")

    def key(self) -> str:
        return trained_cache.lm_recipe_key(self, DATA_VERSION)



def text_prompt(description: str, question: str) -> str:
    """The ja-vqa prompt with ``description`` where the image placeholder would be."""
    from evobench.tasks.ja_vqa import PROMPT

    return PROMPT.replace("{input}", f"{description}\n{question}")


def _stage_texts(recipe: Recipe) -> dict[str, list[tuple[str, str]]]:
    """(prompt, completion) text-only training examples of the base and the Japanese specialist."""
    return {name: [(text_prompt(d, q), " " + a) for d, q, a in
                   text_examples(recipe.n_texts, 100 + recipe.seed * 10 + i, japanese=name == "ja")]
            for i, name in enumerate(("base", "ja"))}


def _tokenizer(recipe: Recipe, texts: dict[str, list[tuple[str, str]]]):
    """Byte-level BPE on the training texts (deterministic), Japanese characters split apart first,
    ``<image>`` an added special token, BOS (= EOS) prepended by the post-processor."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from evobench.models.tiny_lm import EOS, PAD
    from evobench.models.tiny_vlm import IMAGE_TOKEN
    from evobench.tasks.ja_math_mini_models import JAPANESE_CHARACTER

    corpus = [p + c for stage in texts.values() for p, c in stage[:1000]]
    corpus += [text_prompt(s.en, QUESTION_JA) for s in scenes(200, 99)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(JAPANESE_CHARACTER), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=recipe.vocab_size, special_tokens=[EOS, PAD, IMAGE_TOKEN],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"{EOS} $A", special_tokens=[(EOS, tok.token_to_id(EOS))])
    return _wrap(tok)


def _wrap(tok):
    from transformers import PreTrainedTokenizerFast

    from evobench.models.tiny_lm import EOS, PAD
    from evobench.models.tiny_vlm import IMAGE_TOKEN

    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   additional_special_tokens=[IMAGE_TOKEN], padding_side="left")


def llava_config(recipe: Recipe, tok):
    from evobench.models.tiny_vlm import tiny_llava_config

    return tiny_llava_config(tok, next=False, hidden=recipe.hidden, layers=recipe.layers, heads=recipe.heads,
                             kv_heads=recipe.kv_heads, intermediate=recipe.intermediate, max_positions=256)


def processor_of(tok, config):
    from evobench.models.tiny_vlm import tiny_processor

    return tiny_processor(tok, config)


def _rows(prompt_ids: list[int], tok, completion: str, prompt_loss: bool = False) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 = no loss) of a prompt and its completion, EOS appended; with
    ``prompt_loss`` every token but the first is a label."""
    piece = tok.encode(completion, add_special_tokens=False) + [tok.eos_token_id]
    labels = [-100] + prompt_ids[1:] if prompt_loss else [-100] * len(prompt_ids)
    return prompt_ids + piece, labels + piece


def train(model, tok, rows: list[tuple[list[int], list[int]]], steps: int, lr: float, batch_size: int, seed: int,
          trainable: tuple[str, ...], pixels: torch.Tensor | None = None) -> list[float]:
    """Adam on the completion's next-token loss over batches drawn with ``seed``; only parameters
    whose names start with ``trainable`` change. ``pixels[i]`` is row i's image (VLM rows).
    Returns the loss every 50 steps."""
    TRAINING_RUNS["count"] += 1
    gen = torch.Generator().manual_seed(seed)
    params = [p for n, p in model.named_parameters() if n.startswith(trainable)]
    if not params:
        raise ValueError(f"no parameter of the model starts with {trainable}")
    frozen = [p for p in model.parameters() if all(p is not q for q in params)]
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.Adam(params, lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        idx = torch.randint(len(rows), (batch_size,), generator=gen).tolist()
        width = max(len(rows[i][0]) for i in idx)
        ids = torch.full((batch_size, width), tok.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for r, i in enumerate(idx):
            x, y = rows[i]
            ids[r, :len(x)], labels[r, :len(y)], mask[r, :len(x)] = torch.tensor(x), torch.tensor(y), 1
        extra = {} if pixels is None else {"pixel_values": pixels[idx]}
        loss = model(input_ids=ids, attention_mask=mask, labels=labels, **extra).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append(round(float(loss.detach()), 4))
    model.eval()
    for p in frozen:
        p.requires_grad_(True)
    return losses


def image_rows(recipe: Recipe, tok, processor) -> tuple[list[tuple[list[int], list[int]]], torch.Tensor]:
    """The VLM specialist's examples: Japanese question about an image, English-framed answer; and the
    pixels."""
    from evobench.tasks.ja_vlm_mini_data import draw
    from evobench.tasks.ja_vqa import prompt

    train_scenes = scenes(recipe.n_images, 200 + recipe.seed)
    images = [draw(s) for s in train_scenes]
    ids = processor(text=[prompt(QUESTION_JA)], images=images[:1], return_tensors="pt",
                    input_data_format="channels_last")["input_ids"][0].tolist()
    pixels = processor.image_processor(images=images, return_tensors="pt",
                                       input_data_format="channels_last")["pixel_values"]
    return [_rows(ids, tok, " " + s.framed) for s in train_scenes], pixels


def vlm_lm_state(lm) -> dict[str, torch.Tensor]:
    """A causal LM's tensors named as in a LLaVA model's language model."""
    return {(VLM_LM_PREFIX + k[len(LM_PREFIX):] if k.startswith(LM_PREFIX) else k): v
            for k, v in lm.state_dict().items()}


def train_models(recipe: Recipe):
    """Train the tokenizer and the three models (one torch thread); returns (tokenizer, {name: model}, log)."""
    from evobench.models.tiny_vlm import tiny_llava, tiny_text_lm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        texts = _stage_texts(recipe)
        tok = _tokenizer(recipe, texts)
        config = llava_config(recipe, tok)
        processor = processor_of(tok, config)
        text_rows = {k: [_rows(tok.encode(p), tok, c, prompt_loss=k == "base") for p, c in v]
                     for k, v in texts.items()}
        layer = "model.layers.{}."
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            base = tiny_text_lm(config.text_config, seed=recipe.seed)
            log = {"base": train(base, tok, text_rows["base"], recipe.base_steps, recipe.base_lr, recipe.batch_size,
                                 recipe.seed, trainable=("",))}
            en = tiny_llava(config, seed=recipe.seed)
            missing = en.load_state_dict(vlm_lm_state(base), strict=False)
            if missing.unexpected_keys:
                raise RuntimeError(f"base tensors with no place in the VLM: {missing.unexpected_keys[:3]}")
            rows, pixels = image_rows(recipe, tok, processor)
            log["en"] = train(en, tok, rows, recipe.en_steps, recipe.en_lr, recipe.batch_size, recipe.seed + 2,
                              trainable=("model.vision_tower.", "model.multi_modal_projector.",
                                         *(VLM_LM_PREFIX + layer[len(LM_PREFIX):].format(i) for i in recipe.en_layers)),
                              pixels=pixels)
            ja = tiny_text_lm(config.text_config, seed=recipe.seed)
            ja.load_state_dict(base.state_dict())
            log["ja"] = train(ja, tok, text_rows["ja"], recipe.ja_steps, recipe.ja_lr, recipe.batch_size,
                              recipe.seed + 3, trainable=tuple(layer.format(i) for i in recipe.ja_layers))
        log["seconds"] = round(time.perf_counter() - t0, 2)
        return tok, {"base": base, "en": en, "ja": ja}, log
    finally:
        torch.set_num_threads(threads)



def _load(folder: Path):
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import LlavaConfig, LlavaForConditionalGeneration, MistralForCausalLM

    tok = _wrap(Tokenizer.from_file(str(folder / "tokenizer.json")))
    config = LlavaConfig.from_dict(json.loads((folder / "config.json").read_text()))
    models = {}
    for name in MODEL_NAMES:
        m = LlavaForConditionalGeneration(config) if name == "en" else MistralForCausalLM(config.text_config)
        m.load_state_dict(load_file(str(folder / f"{name}.safetensors")))
        models[name] = m.eval()
    return tok, processor_of(tok, config), models


def load_or_train(recipe: Recipe | None = None):
    """(tokenizer, processor, {"base", "ja": MistralForCausalLM, "en": LlavaForConditionalGeneration}) from
    the cache, training them first if absent."""
    recipe = recipe or Recipe()
    folder = trained_cache.recipe_folder("ja-vlm-mini", recipe)
    if not (folder / "ja.safetensors").exists():
        tok, models, log = train_models(recipe)
        trained_cache.save_lms(folder, recipe, tok, models, log, config_of="en", complete="ja.safetensors")
    return _load(folder)
