"""Vision-language models (LLaVA, LLaVA-NeXT) as a model family whose merges touch only the language model.

EvoVLM-JP's recipe: merge the language model inside a VLM with a language model from outside it
(e.g. LLaVA-1.6-Mistral-7B's Mistral with Shisa-Gamma-7B); the vision tower and the projector stay as
they are. :class:`VLMFamily` takes its layout from one live VLM (the *template*): its tensors are the
language model's only (the decoder, i.e. ``model.language_model.*``, and the output head
``lm_head.*``), named as in the VLM. An outside causal LM's tensors are renamed into that naming
(``model.layers.3...`` -> ``model.language_model.layers.3...``), so PS, DFS and PS+DFS merge
language models exactly as :mod:`evobench.models.causal_lm` does.

``build(state)`` copies the state into ONE live VLM owned by the family. That live VLM shares the
template's vision tower, projector and (LLaVA-NeXT) ``image_newline`` -- the same parameter objects,
never copied and never written -- and owns a copy of the language model only. ``build_path`` runs a
path through the decoder layers of several language models as views of their tensors
(:mod:`evobench.models.decoder_path`), the vision parts again those of the template.

:func:`check_vlm_compatible` refuses, before any search, an outside LM whose architecture, sizes or
vocabulary differ from the VLM's language model, or whose tokenizer maps a token to another id than
the VLM's (the VLM's own added tokens, such as ``<image>``, may be extra). An LM with a smaller
vocabulary than the VLM's (LLaVA-1.6-Mistral-7B has 32,064 rows for Mistral's 32,000 tokens plus
``<image>``, ``<pad>`` and padding; EvoVLM-JP keeps 32,064) merges when its tokenizer is given and
agrees: its input embeddings and output head are extended with the VLM's own rows for the extra ids
(one copy of those two tensors), so every merge leaves the VLM's rows for its added tokens as they
are (their task vectors are zero). :func:`pool_from_vlm`
and :func:`load_vlm_pool` give a :class:`~evobench.models.base.ModelPool` whose first source is the
VLM's own language model. Requires the ``llm`` extra.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from evobench.merge.fold import FoldRule, blocks_in, decoder_rule
from evobench.models.base import BlockStack, ModelFamily, ModelPool, State
from evobench.models.causal_lm import IncompatibleModelsError, copy_into, decoder_layer_groups
from evobench.models.decoder_path import DecoderPaths, decoder_layers_name, template_of_depth
from evobench.models.lm_loading import (
    load_causal_lm,
    load_processor,
    load_tokenizer,
    load_vlm,
    resolve_device,
)

TEXT_FIELDS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size",
               "num_attention_heads", "num_key_value_heads", "tie_word_embeddings")


def lm_prefixes(model: nn.Module) -> tuple[str, str]:
    """``(decoder prefix, head prefix)``: where a model's language-model decoder and output head sit
    (``"model.language_model."``, ``"lm_head."`` in a LLaVA; ``"model."``, ``"lm_head."`` in a causal LM)."""
    names = {id(m): n for n, m in model.named_modules()}
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    if decoder is model or id(decoder) not in names or head is None or id(head) not in names:
        raise ValueError(f"{type(model).__name__}: cannot find its language model's decoder and output head")
    return names[id(decoder)] + ".", names[id(head)] + "."


def _rename(name: str, src: tuple[str, str], dst: tuple[str, str]) -> str | None:
    for a, b in zip(src, dst, strict=True):
        if name.startswith(a):
            return b + name[len(a):]
    return None


class VLMFamily(ModelFamily, BlockStack):
    """VLMs shaped like ``template`` (moved to ``device``); tensors and blocks are its language model's."""

    def __init__(self, template: nn.Module, processor: Any = None, device: str | torch.device = "cpu",
                 name: str | None = None) -> None:
        self.device = resolve_device(device)
        self.template = template.to(self.device).eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", None)
        self.text_config = template.config.get_text_config(decoder=True)
        self.prefixes = lm_prefixes(template)
        self.name = name or (f"{template.config.model_type}-{self.text_config.model_type}-"
                             f"{self.text_config.hidden_size}x{self.text_config.num_hidden_layers}")
        params = dict(template.named_parameters())
        self._shapes = {k: tuple(v.shape) for k, v in params.items() if self.in_lm(k)}
        owner = {id(v): k for k, v in params.items()}
        self.aliases = {k: owner[id(v)] for k, v in template.named_parameters(remove_duplicate=False)
                        if owner[id(v)] != k}
        self.fixed = {k: v.detach() for k, v in params.items() if not self.in_lm(k)}
        self.vocab_rows = {self._param_name(template.get_input_embeddings()),
                           self._param_name(template.get_output_embeddings())}
        self.layers_name = decoder_layers_name(template, int(self.text_config.num_hidden_layers),
                                               within=self.prefixes[0])
        self._live: nn.Module | None = None
        self._live_params: dict[str, nn.Parameter] = {}
        self._paths: DecoderPaths | None = None

    def _param_name(self, module: nn.Module) -> str:
        names = {id(p): k for k, p in self.template.named_parameters()}
        return names[id(module.weight)]

    def in_lm(self, name: str) -> bool:
        """Whether tensor ``name`` belongs to the language model (decoder or output head)."""
        return name.startswith(self.prefixes)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    def state_of(self, model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> State:
        """The language-model tensors of a VLM like the template (views, no copy) or of a state dict."""
        src = dict(model_or_state.named_parameters()) if isinstance(model_or_state, nn.Module) else dict(model_or_state)
        missing = [k for k in self._shapes if k not in src]
        if missing:
            raise ValueError(f"{self.name}: model lacks tensors {missing[:3]}")
        return {k: src[k].detach() for k in self._shapes}

    def lm_state(self, lm: nn.Module, what: str = "language model") -> State:
        """The tensors of an outside causal LM (views, no copy), renamed into the VLM's naming."""
        theirs = lm_prefixes(lm)
        out: State = {}
        for k, v in lm.named_parameters():
            mine = _rename(k, theirs, self.prefixes)
            if mine is None or mine not in self._shapes:
                raise IncompatibleModelsError(f"{what}: tensor {k!r} has no counterpart in the language model of "
                                              f"the VLM ({self.name})")
            shape = self._shapes[mine]
            if tuple(v.shape) != shape and mine in self.vocab_rows and v.shape[1:] == shape[1:] \
                    and v.shape[0] < shape[0]:  # a smaller vocabulary: the VLM's own rows for its extra ids
                own = dict(self.template.named_parameters())[mine].detach()
                out[mine] = torch.cat([v.detach(), own[v.shape[0]:].to(v.device, v.dtype)])
                continue
            if tuple(v.shape) != shape:
                raise IncompatibleModelsError(f"{what}: tensor {k!r} has shape {tuple(v.shape)}, the VLM's "
                                              f"{mine!r} has {shape}")
            out[mine] = v.detach()
        missing = [k for k in self._shapes if k not in out]
        if missing:
            raise IncompatibleModelsError(f"{what}: lacks the VLM's language-model tensors {missing[:3]}")
        return out

    def live_model(self) -> nn.Module:
        """The one VLM that :meth:`build` writes into (made on first use): a copy of the template's
        language model, the template's own vision tower, projector and other non-LM tensors."""
        if self._live is None:
            memo: dict[int, Any] = {id(t): t for k, t in self.template.named_parameters() if not self.in_lm(k)}
            memo.update({id(b): b for k, b in self.template.named_buffers() if not self.in_lm(k)})
            self._live = copy.deepcopy(self.template, memo).eval()
            self._live_params = {k: p for k, p in self._live.named_parameters() if self.in_lm(k)}
            for p in self._live_params.values():
                p.requires_grad_(False)
        return self._live

    def build(self, state: State) -> nn.Module:
        """Copy ``state`` (language-model tensors) into the live VLM (in place) and return it."""
        live = self.live_model()
        copy_into(self.name, self._live_params, state)
        return live

    def n_blocks(self) -> int:
        return int(self.text_config.num_hidden_layers)

    def fold_rule(self) -> FoldRule:
        """Its language model's decoder rule (:func:`evobench.merge.fold.decoder_rule`)."""
        return decoder_rule(str(self.text_config.model_type), self.layers_name)

    def for_state(self, state: State) -> VLMFamily:
        """This family with a language model of as many decoder layers as ``state`` has, the template's
        own vision tower and projector (:func:`~evobench.models.decoder_path.template_of_depth`)."""
        n = blocks_in(state, self.layers_name)
        if n in (0, self.n_blocks()):
            return self
        model = template_of_depth(self.template, self.layers_name, n, self.device,
                                  keep=lambda name: not self.in_lm(name))
        text = model.config.get_text_config(decoder=True)
        return VLMFamily(model, self.processor, self.device,
                         name=f"{model.config.model_type}-{text.model_type}-{text.hidden_size}x{n}")

    def build_path(self, sources: Sequence[State], path: Sequence[tuple[int, int]],
                   scales: Sequence[float]) -> nn.Module:
        """A VLM whose language model runs decoder layers ``path[t] = (source, layer)`` (views, no copies).

        Embeddings, final norm and head come from ``sources[0]``; vision tower and projector are the
        template's. The same model object is re-pointed by every call.
        """
        if self._paths is None:
            self._paths = DecoderPaths(self.template, self.aliases, layers_name=self.layers_name, fixed=self.fixed)
        return self._paths.build(sources, path, scales)

    def layer_groups(self) -> dict[str, list[str]]:
        """Tensor names per decoder layer, then ``"outside layers"`` (embeddings, final norm, head)."""
        return decoder_layer_groups(self._shapes, self.layers_name, self.n_blocks())


def _tokenizer_difference(vlm_tok: Any, lm_tok: Any) -> str | None:
    """Why ``lm_tok`` cannot share the VLM's embeddings (None when every LM token has the VLM's id)."""
    va, vb = vlm_tok.get_vocab(), lm_tok.get_vocab()
    moved = sorted(k for k in vb if k in va and va[k] != vb[k])
    if moved:
        return f"tokenizer ids differ (e.g. {moved[0]!r}: {va[moved[0]]} in the VLM, {vb[moved[0]]} in the LM)"
    absent = sorted(k for k in vb if k not in va)
    if absent:
        return f"the LM's tokenizer has tokens the VLM's lacks (e.g. {absent[:3]})"
    added = set(vlm_tok.get_added_vocab())
    extra = sorted(k for k in va if k not in vb and k not in added)
    if extra:
        return f"the VLM's tokenizer has tokens the LM's lacks that are not added tokens (e.g. {extra[:3]})"
    for attr in ("bos_token", "eos_token", "unk_token"):
        if getattr(vlm_tok, attr, None) != getattr(lm_tok, attr, None):
            return f"tokenizer {attr} differs ({getattr(vlm_tok, attr, None)!r} vs {getattr(lm_tok, attr, None)!r})"
    return None


def check_vlm_compatible(vlm_name: str, vlm: nn.Module, lms: Mapping[str, nn.Module],
                         vlm_tokenizer: Any = None, tokenizers: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`IncompatibleModelsError` (one line) unless every LM in ``lms`` has the architecture,
    sizes and vocabulary of the VLM's language model and (where given) a tokenizer that maps each of
    its tokens to the VLM tokenizer's id for it."""
    text = vlm.config.get_text_config(decoder=True)
    for n, lm in lms.items():
        head = f"cannot merge the language model of {vlm_name!r} with {n!r}"
        checked_tokenizer = vlm_tokenizer is not None and bool(tokenizers) and n in tokenizers
        for f in TEXT_FIELDS:
            va, vb = getattr(text, f, None), getattr(lm.config, f, None)
            if f == "vocab_size" and isinstance(va, int) and isinstance(vb, int) and vb < va:
                if checked_tokenizer:
                    continue  # extended with the VLM's rows, if the tokenizers agree (below)
                raise IncompatibleModelsError(f"{head}: vocab_size differs ({va!r} vs {vb!r}); a smaller "
                                              "vocabulary merges only when both tokenizers are given and agree")
            if va != vb:
                raise IncompatibleModelsError(f"{head}: {f} differs ({va!r} vs {vb!r})")
        if checked_tokenizer:
            why = _tokenizer_difference(vlm_tokenizer, tokenizers[n])
            if why:
                raise IncompatibleModelsError(f"{head}: {why}")


def pool_from_vlm(vlm: nn.Module, lms: Mapping[str, nn.Module], base: nn.Module | None = None, *,
                  processor: Any = None, tokenizers: Mapping[str, Any] | None = None, vlm_name: str = "vlm",
                  device: str | torch.device = "cpu") -> ModelPool:
    """A pool whose sources are the VLM's own language model (``vlm_name``) and each outside LM in
    ``lms``; ``base`` (an LM, optional) is the shared ancestor of the task vectors. Tensors are shared,
    not copied; everything is checked first (:func:`check_vlm_compatible`)."""
    checked = dict(lms)
    if base is not None:
        checked["base"] = base
    check_vlm_compatible(vlm_name, vlm, checked, getattr(processor, "tokenizer", None), tokenizers)
    dev = resolve_device(device)
    family = VLMFamily(vlm, processor, device=dev)
    sources = [(vlm_name, family.state_of(vlm))]
    sources += [(n, family.lm_state(m.to(dev), f"language model {n!r}")) for n, m in lms.items()]
    return ModelPool(family, sources=sources,
                     base=family.lm_state(base.to(dev), "base model") if base is not None else None)


def load_vlm_pool(sources: Sequence[str], base: str | None = None, *, device: str | torch.device = "cpu",
                  dtype: str | torch.dtype = "float32", local_files_only: bool = False) -> ModelPool:
    """``sources[0]`` is a LLaVA(-NeXT) model (hub id or directory) loaded with its processor; the
    others, and ``base``, are causal LMs merged into its language model (see :func:`pool_from_vlm`)."""
    first, *others = list(sources)
    vlm = load_vlm(first, dtype=dtype, device=device, local_files_only=local_files_only)
    processor = load_processor(first, local_files_only=local_files_only)
    names = list(dict.fromkeys([*others, *([base] if base is not None else [])]))
    lms = {n: load_causal_lm(n, dtype=dtype, device=device, local_files_only=local_files_only) for n in names}
    toks = {n: load_tokenizer(n, local_files_only=local_files_only) for n in names}
    if base is not None:
        toks["base"] = toks[base]
    return pool_from_vlm(vlm, {n: lms[n] for n in others}, lms[base] if base is not None else None,
                         processor=processor, tokenizers=toks, vlm_name=first, device=device)
