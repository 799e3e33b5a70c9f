"""Hugging Face causal language models as a model family: in-place builds, decoder-layer paths, pools.

:class:`CausalLMFamily` takes its tensor layout from one live model (the *template*). A state dict
holds one tensor per parameter; tied parameters are one tensor (a tied ``lm_head.weight`` is not a
key: it is ``model.embed_tokens.weight``). ``build(state)`` copies the state into ONE live model
owned by the family (made once, as a copy of the template) and returns it, so building a candidate
allocates no model: the family holds the sources, the base and one live model. ``build_path`` runs a path
through the decoder layers of several models without copying them (:mod:`evobench.models.decoder_path`).

:func:`check_compatible` refuses, before any search, models that differ in architecture, sizes,
vocabulary or tokenizer. :func:`pool_from_models` and :func:`load_pool` give a
:class:`~evobench.models.base.ModelPool` over such models.

Requires the ``llm`` extra (transformers).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from evobench.merge.fold import FoldRule, blocks_in, decoder_rule
from evobench.models.base import BlockStack, ModelFamily, ModelPool, State
from evobench.models.decoder_path import DecoderPaths, decoder_layers_name, template_of_depth
from evobench.models.lm_loading import load_causal_lm, load_tokenizer, resolve_device

OUTSIDE_LAYERS = "outside layers"
CONFIG_FIELDS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size",
                 "num_attention_heads", "num_key_value_heads", "tie_word_embeddings")


class IncompatibleModelsError(ValueError):
    """Models that cannot be merged (one line: which models, and what differs)."""


@torch.no_grad()
def copy_into(family: str, params: Mapping[str, torch.Tensor], state: State) -> None:
    """Write ``state[name]`` into each live parameter ``params[name]`` (in place; dtype and device
    converted); a missing tensor or another shape is a one-line error naming ``family``."""
    for name, p in params.items():
        t = state.get(name)
        if t is None:
            raise ValueError(f"{family}: state lacks tensor {name!r}")
        if t.shape != p.shape:
            raise ValueError(f"{family}: tensor {name!r} has shape {tuple(t.shape)}, expected {tuple(p.shape)}")
        p.copy_(t)


class CausalLMFamily(ModelFamily, BlockStack):
    """Causal LMs shaped like ``template`` (moved to ``device``); blocks are its decoder layers."""

    def __init__(self, template: nn.Module, tokenizer: Any = None, device: str | torch.device = "cpu",
                 name: str | None = None) -> None:
        self.device = resolve_device(device)
        self.template = template.to(self.device).eval()
        self.tokenizer = tokenizer
        cfg = template.config
        self.name = name or f"{cfg.model_type}-{cfg.hidden_size}x{cfg.num_hidden_layers}"
        params = dict(template.named_parameters())
        self._shapes = {k: tuple(v.shape) for k, v in params.items()}
        owner = {id(v): k for k, v in params.items()}
        self.aliases = {k: owner[id(v)] for k, v in template.named_parameters(remove_duplicate=False)
                        if owner[id(v)] != k}
        self.layers_name = decoder_layers_name(template)
        self._live: nn.Module | None = None
        self._live_params: dict[str, nn.Parameter] = {}
        self._paths: DecoderPaths | None = None

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    def state_of(self, model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> State:
        """The family's tensors of a model (views of its parameters, no copy) or of a state dict
        (alias keys such as a tied ``lm_head.weight`` dropped)."""
        if isinstance(model_or_state, nn.Module):
            src = dict(model_or_state.named_parameters())
        else:
            src = dict(model_or_state)
        missing = [k for k in self._shapes if k not in src]
        if missing:
            raise ValueError(f"{self.name}: model lacks tensors {missing[:3]}")
        return {k: src[k].detach() for k in self._shapes}

    def live_model(self) -> nn.Module:
        """The one model that :meth:`build` writes into (made on first use)."""
        if self._live is None:
            self._live = copy.deepcopy(self.template).eval().requires_grad_(False)
            self._live_params = dict(self._live.named_parameters())
        return self._live

    def build(self, state: State) -> nn.Module:
        """Copy ``state`` into the live model (in place; dtype and device converted) and return it."""
        live = self.live_model()
        copy_into(self.name, self._live_params, state)
        return live

    def check_compatible(self, other: ModelFamily, names: tuple[str, str] = ("this family", "the other")) -> None:
        """As :meth:`ModelFamily.check_compatible`, and the models' configs and tokenizers must agree
        (:func:`check_compatible`): a task scores a model through its own family's tokenizer."""
        super().check_compatible(other, names)
        toks = {names[0]: self.tokenizer, names[1]: other.tokenizer}
        check_compatible({names[0]: self.template, names[1]: other.template},
                         toks if all(t is not None for t in toks.values()) else None)

    def n_blocks(self) -> int:
        return int(self.template.config.num_hidden_layers)

    def fold_rule(self) -> FoldRule:
        """Residual-stream writers divided by the cumulative scale (:func:`evobench.merge.fold.decoder_rule`);
        FoldError for an architecture that does not fold."""
        return decoder_rule(str(self.template.config.model_type), self.layers_name)

    def for_state(self, state: State) -> CausalLMFamily:
        """This family with as many decoder layers as ``state`` has (a layer path written as a plain
        model), over a template of that depth (:func:`~evobench.models.decoder_path.template_of_depth`)."""
        n = blocks_in(state, self.layers_name)
        if n in (0, self.n_blocks()):
            return self
        model = template_of_depth(self.template, self.layers_name, n, self.device)
        config = model.config
        return CausalLMFamily(model, self.tokenizer, self.device, name=f"{config.model_type}-{config.hidden_size}x{n}")

    def build_path(self, sources: Sequence[State], path: Sequence[tuple[int, int]],
                   scales: Sequence[float]) -> nn.Module:
        """A model running decoder layers ``path[t] = (source, layer)``; tensors are shared, not copied.

        Embeddings, final norm and head come from ``sources[0]``. The same model object is re-pointed
        by every call.
        """
        if self._paths is None:
            self._paths = DecoderPaths(self.template, self.aliases)
        return self._paths.build(sources, path, scales)

    def save_config(self, folder) -> None:
        """Write the model's config and tokenizer to ``folder`` (beside a ``model.safetensors`` of this
        family, the folder loads with ``from_pretrained``)."""
        self.template.config.save_pretrained(str(folder))
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(folder))

    def layer_groups(self) -> dict[str, list[str]]:
        """Tensor names per decoder layer (``"model.layers.3"`` ...), then ``"outside layers"`` for the
        rest (embeddings, final norm, head): the groups of per-layer merge recipes."""
        return decoder_layer_groups(self._shapes, self.layers_name, self.n_blocks())


def decoder_layer_groups(names, layers_name: str, n_blocks: int) -> dict[str, list[str]]:
    """``names`` grouped per decoder layer ``{layers_name}.{i}``, then :data:`OUTSIDE_LAYERS` for the rest."""
    stem = layers_name + "."
    groups: dict[str, list[str]] = {f"{stem}{i}": [] for i in range(n_blocks)}
    rest = []
    for name in names:
        if name.startswith(stem):
            groups[stem + name[len(stem):].split(".")[0]].append(name)
        else:
            rest.append(name)
    if rest:
        groups[OUTSIDE_LAYERS] = rest
    return groups


def _config(model_or_config):
    return getattr(model_or_config, "config", model_or_config)


def _architecture(model_or_config) -> str | None:
    """The model class name (of a live model, or the one its config names; None if it names none)."""
    if isinstance(model_or_config, nn.Module):
        return type(model_or_config).__name__
    names = getattr(model_or_config, "architectures", None)
    return names[0] if names else None


def _tokenizer_difference(a, b) -> str | None:
    va, vb = a.get_vocab(), b.get_vocab()
    if va != vb:
        extra = sorted(set(va) ^ set(vb))[:3]
        moved = sorted(k for k in set(va) & set(vb) if va[k] != vb[k])[:3]
        return (f"tokenizer vocabularies differ ({len(va)} vs {len(vb)} tokens; "
                f"{'tokens in one only: ' + repr(extra) if extra else 'tokens with other ids: ' + repr(moved)})")
    for attr in ("bos_token", "eos_token", "pad_token", "unk_token"):
        if getattr(a, attr, None) != getattr(b, attr, None):
            return f"tokenizer {attr} differs ({getattr(a, attr, None)!r} vs {getattr(b, attr, None)!r})"
    sa, sb = sorted(map(str, a.all_special_tokens)), sorted(map(str, b.all_special_tokens))
    if sa != sb:
        return f"tokenizer special tokens differ ({sa} vs {sb})"
    return None


def check_compatible(models: Mapping[str, Any], tokenizers: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`IncompatibleModelsError` unless all models (or configs) share architecture, sizes
    and vocabulary, and all tokenizers share vocabulary and special tokens."""
    names = list(models)
    ref = names[0]
    for n in names[1:]:
        arch_a, arch_b = _architecture(models[ref]), _architecture(models[n])
        if arch_a and arch_b and arch_a != arch_b:
            raise IncompatibleModelsError(f"cannot merge {ref!r} and {n!r}: architecture differs "
                                          f"({arch_a} vs {arch_b})")
        a, b = _config(models[ref]), _config(models[n])
        for f in CONFIG_FIELDS:
            va, vb = getattr(a, f, None), getattr(b, f, None)
            if va != vb:
                raise IncompatibleModelsError(f"cannot merge {ref!r} and {n!r}: {f} differs ({va!r} vs {vb!r})")
    if tokenizers:
        tnames = list(tokenizers)
        for n in tnames[1:]:
            why = _tokenizer_difference(tokenizers[tnames[0]], tokenizers[n])
            if why:
                raise IncompatibleModelsError(f"cannot merge {tnames[0]!r} and {n!r}: {why}")


def pool_from_models(sources: Mapping[str, nn.Module | State], base: nn.Module | State | None = None, *,
                     template: nn.Module | None = None, tokenizers: Mapping[str, Any] | Any = None,
                     device: str | torch.device = "cpu") -> ModelPool:
    """A pool over live models (their tensors are shared, not copied) or state dicts shaped like
    ``template`` (default: the first source model). ``tokenizers``: one shared tokenizer, or one per
    model name (checked for compatibility); the family carries the first source's."""
    if len(sources) < 1:
        raise ValueError("an LM pool needs at least one source model")
    modules = {n: m for n, m in sources.items() if isinstance(m, nn.Module)}
    if isinstance(base, nn.Module):
        modules["base"] = base
    template = template if template is not None else next(iter(modules.values()), None)
    if template is None:
        raise ValueError("an LM pool of state dicts needs a template model")
    checked = modules if any(m is template for m in modules.values()) else {"template": template, **modules}
    check_compatible(checked, tokenizers if isinstance(tokenizers, Mapping) else None)
    tok = tokenizers.get(next(iter(sources)), next(iter(tokenizers.values()))) \
        if isinstance(tokenizers, Mapping) else tokenizers
    dev = resolve_device(device)
    family = CausalLMFamily(template, tokenizer=tok, device=dev)

    def state(x):
        return family.state_of(x.to(dev) if isinstance(x, nn.Module) else {k: v.to(dev) for k, v in x.items()})

    return ModelPool(family, sources=[(n, state(m)) for n, m in sources.items()],
                     base=state(base) if base is not None else None)


def load_pool(sources: Sequence[str], base: str | None = None, *, device: str | torch.device = "cpu",
              dtype: str | torch.dtype = "float32", local_files_only: bool = False) -> ModelPool:
    """Load each named model (hub id, directory or ``.gguf``) and its tokenizer once; see
    :func:`pool_from_models`."""
    names = list(dict.fromkeys([*sources, *([base] if base is not None else [])]))
    models = {n: load_causal_lm(n, dtype=dtype, device=device, local_files_only=local_files_only)
              for n in names}
    toks = {n: load_tokenizer(n, local_files_only=local_files_only) for n in names}
    return pool_from_models({n: models[n] for n in sources}, models[base] if base is not None else None,
                            tokenizers=toks, device=device)
