"""Layer paths through the decoder layers of several causal LMs (data-flow-space merging), without copies.

A path model is an instance of the template's own class (e.g. ``LlamaForCausalLM``), built once on
the ``meta`` device and then pointed at existing tensors: its embeddings, final norm and LM head are
parameters that *view* the tensors of ``sources[0]``, and its decoder-layer list is replaced at each
build by one :class:`PathStep` per path position. A step wraps a decoder-layer module whose
parameters view the tensors of ``sources[s]``'s layer ``i``; that module is made once per
``(s, i)`` and shared by every step that runs it. No parameter memory is allocated per build.

KV cache: each attention module writes to the cache slot named by its ``layer_idx``. A step sets
``layer_idx`` (on every submodule of its layer that has one) to its own path position for the
duration of its call, so a layer that appears twice on a path uses two cache slots. The path model's
config says ``num_hidden_layers = len(path)`` (and, where the architecture has ``layer_types``, the
types of the layers on the path), so the caches transformers creates have one slot per step. In a
composite model (a LLaVA VLM) the text config and the language model's own config are both updated,
and tensors outside the layers that the states do not hold (the vision tower, the projector) view
the ``fixed`` tensors given to :class:`DecoderPaths`.

The same path model object is returned by every build (the runner builds and scores one candidate at
a time): building a new path re-points the previous one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

State = Mapping[str, torch.Tensor]


def decoder_layers_name(model: nn.Module, n_layers: int | None = None, within: str = "") -> str:
    """Dotted name of the ``nn.ModuleList`` holding the decoder layers (e.g. ``"model.layers"``).

    ``n_layers`` defaults to the config's ``num_hidden_layers``; ``within`` restricts the search to
    modules whose names start with it (e.g. a VLM's ``"model.language_model."``).
    """
    n = int(model.config.num_hidden_layers if n_layers is None else n_layers)
    found = [name for name, m in model.named_modules()
             if isinstance(m, nn.ModuleList) and len(m) == n and name.startswith(within)]
    if len(found) != 1:
        raise ValueError(f"{type(model).__name__}: cannot tell which module list holds its {n} decoder layers "
                         f"(candidates: {found or 'none'})")
    return found[0]


def template_of_depth(template: nn.Module, layers_name: str, n: int, device: torch.device,
                      keep: Callable[[str], bool] | None = None) -> nn.Module:
    """A model like ``template`` with ``n`` decoder layers (its text config's ``num_hidden_layers``):
    built on ``meta``, then given memory on ``device``; its buffers (rotary tables) and the parameters
    ``keep`` selects (a VLM's vision tower and projector) are copied from ``template``, a tied head is
    tied again, and the other parameters are left for a state to fill (``family.build``)."""
    config = copy.deepcopy(template.config)
    text = config.get_text_config(decoder=True)
    layer_types = getattr(text, "layer_types", None)
    text.num_hidden_layers = n
    if layer_types is not None:
        if len(set(layer_types)) != 1:
            raise ValueError(f"a model of {n} layers of mixed types {sorted(set(layer_types))} cannot be rebuilt "
                             "from its weights alone")
        text.layer_types = [layer_types[0]] * n
    with torch.device("meta"):
        model = type(template)(config)
    model = model.to_empty(device=device).eval().requires_grad_(False)
    model.tie_weights()  # to_empty gives tied parameters (a tied head) a tensor each: tie them again
    stem = layers_name + "."
    buffers, params = dict(template.named_buffers()), dict(template.named_parameters())
    with torch.no_grad():
        for name, buf in model.named_buffers():
            src = buffers.get(name)
            if src is None and name.startswith(stem):  # a per-layer buffer: the same in every layer
                src = buffers.get(f"{stem}0.{name[len(stem):].partition('.')[2]}")
            if src is None or src.shape != buf.shape:
                raise ValueError(f"buffer {name!r} of a {n}-layer model has no counterpart in the template")
            buf.copy_(src)
        for name, p in model.named_parameters():
            if keep is not None and keep(name):
                p.copy_(params[name])
    model.generation_config = copy.deepcopy(template.generation_config)
    return model


def _view(t: torch.Tensor) -> nn.Parameter:
    """A frozen parameter sharing ``t``'s storage (no copy)."""
    return nn.Parameter(t.detach(), requires_grad=False)


def _with_layer_idx(block: nn.Module) -> list[nn.Module]:
    mods = [m for m in block.modules() if isinstance(getattr(m, "layer_idx", None), int)]
    if not mods:
        raise ValueError(f"{type(block).__name__} has no layer_idx: cannot give path steps their own cache slots")
    return mods


class PathStep(nn.Module):
    """Path position ``index``: scales the incoming hidden state by ``scale``, then runs ``block`` as
    cache slot ``index``. ``block`` may be shared with other steps (a repeated layer)."""

    def __init__(self, block: nn.Module, index: int, scale: float) -> None:
        super().__init__()
        self.block, self.index, self.scale = block, int(index), float(scale)
        self._indexed = _with_layer_idx(block)
        if hasattr(block, "attention_type"):
            self.attention_type = block.attention_type

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        if self.scale != 1.0:
            hidden_states = hidden_states * self.scale
        saved = [m.layer_idx for m in self._indexed]
        for m in self._indexed:
            m.layer_idx = self.index
        try:
            return self.block(hidden_states, *args, **kwargs)
        finally:
            for m, i in zip(self._indexed, saved, strict=True):
                m.layer_idx = i


class DecoderPaths:
    """Builds path models over the architecture of ``template`` (see the module docstring).

    ``aliases`` maps tied parameter names (e.g. ``lm_head.weight``) to the state key holding the tensor;
    ``layers_name`` names the decoder-layer list (default: found by :func:`decoder_layers_name`);
    ``fixed`` holds tensors outside the layers that no state holds (a VLM's vision tower), by name.
    """

    def __init__(self, template: nn.Module, aliases: Mapping[str, str] | None = None, *,
                 layers_name: str | None = None, fixed: Mapping[str, torch.Tensor] | None = None) -> None:
        self.template, self.aliases, self.fixed = template, dict(aliases or {}), dict(fixed or {})
        self.prefix = layers_name or decoder_layers_name(template)
        text = template.config.get_text_config(decoder=True)
        self.n_layers = int(text.num_hidden_layers)
        self.layer_types = getattr(text, "layer_types", None)
        self.config = copy.deepcopy(template.config)
        with torch.device("meta"):
            self.model = type(template)(self.config)
        self.model.generation_config = copy.deepcopy(template.generation_config)
        # every config object the path model's text side reads (one for a causal LM; a VLM's text
        # config and its language model's own copy)
        configs = [self.config.get_text_config(decoder=True), getattr(self.model.get_decoder(), "config", None)]
        self._text_configs = list({id(c): c for c in configs if c is not None}.values())
        self.model.eval().requires_grad_(False)
        self._skeletons = list(self.model.get_submodule(self.prefix))
        self._buffers = dict(template.named_buffers())
        self._blocks: dict[tuple[int, int], tuple[tuple[int, ...], nn.Module]] = {}
        parent, _, self._leaf = self.prefix.rpartition(".")
        self._parent = self.model.get_submodule(parent)
        self._share_outer_buffers()

    def _inside(self, name: str) -> bool:
        return name == self.prefix or name.startswith(self.prefix + ".")

    def _share_outer_buffers(self) -> None:
        for mname, mod in self.model.named_modules():
            if self._inside(mname):
                continue
            for bname, buf in mod._buffers.items():
                if buf is not None:
                    mod._buffers[bname] = self._buffers[f"{mname}.{bname}" if mname else bname]

    def _point_outer(self, state: State) -> None:
        """Embeddings, final norm, head (everything outside the layers) view ``state``'s tensors."""
        for mname, mod in self.model.named_modules():
            if self._inside(mname):
                continue
            for pname, p in mod._parameters.items():
                if p is not None:
                    full = f"{mname}.{pname}" if mname else pname
                    key = self.aliases.get(full, full)
                    mod._parameters[pname] = _view(state[key] if key in state or key not in self.fixed
                                                   else self.fixed[key])

    def _block(self, state: State, s: int, i: int) -> nn.Module:
        """Decoder layer ``i`` viewing ``state``'s tensors (made once per source and layer)."""
        skel, stem = self._skeletons[i], f"{self.prefix}.{i}."
        names = [n for n, _ in skel.named_parameters()]
        ptrs = tuple(state[stem + n].data_ptr() for n in names)
        hit = self._blocks.get((s, i))
        if hit is not None and hit[0] == ptrs:
            return hit[1]
        block = copy.deepcopy(skel, memo={id(c): c for c in (self.config, *self._text_configs)})
        for mname, mod in block.named_modules():
            pre = stem + (f"{mname}." if mname else "")
            for pname, p in mod._parameters.items():
                if p is not None:
                    mod._parameters[pname] = _view(state[pre + pname])
            for bname, b in mod._buffers.items():
                if b is not None:
                    mod._buffers[bname] = self._buffers[pre + bname]
        self._blocks[(s, i)] = (ptrs, block)
        return block

    def build(self, sources: Sequence[State], path: Sequence[tuple[int, int]], scales: Sequence[float]):
        """The path model running ``path`` (see :meth:`evobench.models.base.BlockStack.build_path`)."""
        if len(path) != len(scales):
            raise ValueError(f"layer path has {len(path)} steps but {len(scales)} scales")
        if not path:
            raise ValueError("layer path is empty")
        for s, i in path:
            if not (0 <= s < len(sources) and 0 <= i < self.n_layers):
                raise ValueError(f"layer path step ({s}, {i}) is outside {len(sources)} models "
                                 f"x {self.n_layers} layers")
        self._point_outer(sources[0])
        steps = [PathStep(self._block(sources[s], s, i), t, scale)
                 for t, ((s, i), scale) in enumerate(zip(path, scales, strict=True))]
        setattr(self._parent, self._leaf, nn.ModuleList(steps))
        for config in self._text_configs:
            config.num_hidden_layers = len(steps)
            if self.layer_types is not None:
                config.layer_types = [self.layer_types[i] for _, i in path]
        return self.model
