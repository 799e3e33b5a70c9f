"""Text-to-image diffusers pipelines as a model family: the UNet is merged, everything else is shared.

:class:`UNetFamily` takes its tensor layout from the UNet of one pipeline (the *template*): a state
dict is the UNet's parameters under the UNet's own names (``down_blocks.0.resnets.0.conv1.weight``
...), so a run's ``best_model.safetensors`` loads into a ``UNet2DConditionModel``. ``build(state)``
copies the state into ONE live UNet owned by the family (made once, as a copy of the template's) and
returns ONE live pipeline around it; that pipeline shares every other component of the template --
text encoder(s), VAE, tokenizer(s), scheduler -- which are never copied or written. A candidate
therefore allocates no model: the family holds the sources' UNet tensors, the base's and one live UNet.

``layer_groups()`` splits the UNet into its blocks (``down_blocks.i``, ``mid_block``, ``up_blocks.i``)
plus the tensors outside them (input conv, time embedding, output norm and conv), the groups of
``ps`` with ``granularity: layer``. UNets have skip connections, not a stack of same-shaped blocks,
so no layer-path (``dfs``) space is offered.

:func:`check_pipelines` refuses, before any search, pipelines whose UNets differ in class or config,
or whose other components differ (another text encoder, VAE, tokenizer or scheduler): a source's
score must be the score of that source, and the merged pipelines run the shared components of the
first. :func:`pool_from_pipelines` and :func:`load_pool` give a :class:`~evobench.models.base.ModelPool`
over such pipelines; :func:`load_pipeline` loads one (a local folder or a hub id; safetensors only).

Requires the ``vision`` extra (diffusers, transformers).
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evobench.models.base import ModelFamily, ModelPool, State
from evobench.models.causal_lm import IncompatibleModelsError
from evobench.models.lm_loading import PICKLE_SUFFIXES, ModelLoadError, resolve_device, resolve_dtype

OUTSIDE_BLOCKS = "outside blocks"
BLOCK_PREFIXES = ("down_blocks.", "up_blocks.")


def import_diffusers():
    """``diffusers``, or a ModuleNotFoundError naming the extra (``pip install 'evobench[vision]'``)."""
    try:
        import diffusers
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "diffusers":
            raise
        raise ModuleNotFoundError("text-to-image pipelines need diffusers: "
                                  "pip install -c constraints-vision.txt 'evobench[vision]'", name="diffusers") from None
    return diffusers


class UNetFamily(ModelFamily):
    """Pipelines shaped like ``template`` (on its device) that differ only in their UNet."""

    def __init__(self, template: Any, name: str | None = None) -> None:
        unet = getattr(template, "unet", None)
        if not isinstance(unet, nn.Module):
            raise ValueError(f"a {type(template).__name__} has no UNet to merge")
        self.template = template
        self.name = name or f"{type(unet).__name__}-{sum(p.numel() for p in unet.parameters())}"
        self._shapes = {k: tuple(v.shape) for k, v in unet.named_parameters()}
        self._live: Any = None
        self._live_params: dict[str, nn.Parameter] = {}

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    @property
    def device(self) -> torch.device:
        return next(self.template.unet.parameters()).device

    def state_of(self, pipeline_or_unet: Any) -> State:
        """The UNet tensors of a pipeline or UNet (views of its parameters, no copy)."""
        unet = getattr(pipeline_or_unet, "unet", pipeline_or_unet)
        params = dict(unet.named_parameters())
        missing = [k for k in self._shapes if k not in params]
        if missing:
            raise ValueError(f"{self.name}: UNet lacks tensors {missing[:3]}")
        return {k: params[k].detach() for k in self._shapes}

    def live_model(self) -> Any:
        """The one pipeline that :meth:`build` writes into (made on first use): a copy of the
        template's UNet inside a pipeline sharing the template's other components."""
        if self._live is None:
            unet = copy.deepcopy(self.template.unet).eval().requires_grad_(False)
            self._live = rebuild_pipeline(self.template, unet=unet)
            self._live_params = dict(unet.named_parameters())
        return self._live

    @torch.no_grad()
    def build(self, state: State) -> Any:
        """Copy ``state`` into the live UNet (in place; dtype and device converted); return the live pipeline."""
        live = self.live_model()
        for name, p in self._live_params.items():
            t = state.get(name)
            if t is None:
                raise ValueError(f"{self.name}: state lacks tensor {name!r}")
            if t.shape != p.shape:
                raise ValueError(f"{self.name}: tensor {name!r} has shape {tuple(t.shape)}, expected {tuple(p.shape)}")
            p.copy_(t)
        return live

    def check_compatible(self, other: ModelFamily, names: tuple[str, str] = ("this family", "the other")) -> None:
        """As :meth:`ModelFamily.check_compatible`, and the pipelines' UNet configs and shared components
        must agree (:func:`check_pipelines`)."""
        super().check_compatible(other, names)
        check_pipelines({names[0]: self.template, names[1]: other.template})

    def layer_groups(self) -> dict[str, list[str]]:
        """Tensor names per UNet block (``down_blocks.0`` ... ``mid_block`` ... ``up_blocks.N``), then
        ``"outside blocks"`` for the rest."""
        groups: dict[str, list[str]] = {}
        rest = []
        for name in self._shapes:
            if name.startswith(BLOCK_PREFIXES):
                key = ".".join(name.split(".")[:2])
            elif name.startswith("mid_block."):
                key = "mid_block"
            else:
                rest.append(name)
                continue
            groups.setdefault(key, []).append(name)
        if rest:
            groups[OUTSIDE_BLOCKS] = rest
        return groups


def rebuild_pipeline(template: Any, **replace: Any) -> Any:
    """A new pipeline of ``template``'s class over its components (the same objects, not copies), with
    the components in ``replace`` swapped in; its progress bar is off."""
    components = {**template.components, **replace}
    params = inspect.signature(type(template).__init__).parameters
    extra = {k: template.config[k] for k in params if k not in components and k in template.config}
    pipe = type(template)(**components, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _config(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(obj.config).items() if not k.startswith("_")}


def _module_difference(a: nn.Module, b: nn.Module) -> str | None:
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        return f"tensor {sorted(sa.keys() ^ sb.keys())[0]!r} is in one only"
    for k, v in sa.items():
        if v.shape != sb[k].shape:
            return f"tensor {k!r} has shape {tuple(v.shape)} vs {tuple(sb[k].shape)}"
        if not torch.equal(v, sb[k].to(v.device)):
            return f"tensor {k!r} differs"
    return None


def _component_difference(a: Any, b: Any) -> str | None:
    """Why two pipeline components are not the same (None when they are)."""
    if a is b:
        return None
    if a is None or b is None or type(a) is not type(b):
        return f"{type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, nn.Module):
        return _module_difference(a, b)
    if hasattr(a, "get_vocab"):
        va, vb = a.get_vocab(), b.get_vocab()
        if va != vb:
            return f"tokenizer vocabularies differ ({len(va)} vs {len(vb)} tokens)"
        return None if getattr(a, "model_max_length", None) == getattr(b, "model_max_length", None) else \
            f"model_max_length {a.model_max_length} vs {b.model_max_length}"
    if hasattr(a, "config"):
        ca, cb = _config(a), _config(b)
        key = next((k for k in sorted(ca.keys() | cb.keys()) if ca.get(k) != cb.get(k)), None)
        return None if key is None else f"config {key!r} differs ({ca.get(key)!r} vs {cb.get(key)!r})"
    if hasattr(a, "to_dict"):
        return None if a.to_dict() == b.to_dict() else "settings differ"
    return None if a == b else "they differ"


def check_pipelines(pipelines: Mapping[str, Any]) -> None:
    """Raise :class:`~evobench.models.causal_lm.IncompatibleModelsError` (one line) unless all pipelines
    are of one class, their UNets share class and config, and every other component is the same."""
    names = list(pipelines)
    ref = pipelines[names[0]]
    for n in names[1:]:
        other = pipelines[n]
        why = f"cannot merge {names[0]!r} and {n!r}"
        if type(ref) is not type(other):
            raise IncompatibleModelsError(f"{why}: pipeline classes differ ({type(ref).__name__} vs "
                                          f"{type(other).__name__})")
        ua, ub = ref.unet, other.unet
        if type(ua) is not type(ub):
            raise IncompatibleModelsError(f"{why}: UNet classes differ ({type(ua).__name__} vs {type(ub).__name__})")
        ca, cb = _config(ua), _config(ub)
        key = next((k for k in sorted(ca.keys() | cb.keys()) if ca.get(k) != cb.get(k)), None)
        if key is not None:
            raise IncompatibleModelsError(f"{why}: UNet config {key!r} differs ({ca.get(key)!r} vs {cb.get(key)!r})")
        for comp in sorted(set(ref.components) | set(other.components)):
            if comp == "unet":
                continue
            diff = _component_difference(ref.components.get(comp), other.components.get(comp))
            if diff is not None:
                raise IncompatibleModelsError(f"{why}: their {comp} differs ({diff}); only UNets are merged, "
                                              "every other component must be shared")


def pool_from_pipelines(sources: Mapping[str, Any], base: Any = None) -> ModelPool:
    """A pool over pipelines (their UNet tensors are shared, not copied), checked by
    :func:`check_pipelines`; the first source's pipeline is the family's template."""
    if len(sources) < 1:
        raise ValueError("a pipeline pool needs at least one source pipeline")
    check_pipelines({**sources, **({"base": base} if base is not None else {})})
    family = UNetFamily(next(iter(sources.values())))
    return ModelPool(family, sources=[(n, family.state_of(p)) for n, p in sources.items()],
                     base=family.state_of(base) if base is not None else None)


def _looks_like_path(source: str) -> bool:
    return Path(source).expanduser().exists() or source.startswith((".", "/", "~")) or source.count("/") > 1


def _check_local_pipeline(folder: Path) -> None:
    if not folder.is_dir():
        raise ModelLoadError(f"pipeline folder {str(folder)!r} does not exist")
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(f"{str(folder)!r} is not a diffusers pipeline folder (no model_index.json)")
    unet = folder / "unet"
    files = [f.name for f in unet.iterdir() if f.is_file()] if unet.is_dir() else []
    if any(f.endswith(".safetensors") for f in files):
        return
    pickled = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickled:
        raise ModelLoadError(f"pipeline {str(folder)!r} has only pickled UNet weights ({', '.join(pickled)}); "
                             "evobench loads safetensors only: save it with safe_serialization=True")
    raise ModelLoadError(f"pipeline {str(folder)!r} has no unet/*.safetensors weights")


def load_pipeline(source: str | os.PathLike, *, dtype: str | torch.dtype = "float32",
                  device: str | torch.device = "cpu", local_files_only: bool = False) -> Any:
    """A diffusers pipeline (a local folder saved with ``save_pretrained`` or a hub id) on ``device``,
    weights in ``dtype``, safetensors only, progress bar off."""
    diffusers = import_diffusers()
    dev, dt, src = resolve_device(device), resolve_dtype(dtype), os.fspath(source)
    if _looks_like_path(src):
        _check_local_pipeline(Path(src).expanduser())
        src = str(Path(src).expanduser())
    try:
        pipe = diffusers.DiffusionPipeline.from_pretrained(src, dtype=dt, use_safetensors=True,
                                                           local_files_only=local_files_only)
    except OSError as e:
        from huggingface_hub.errors import LocalEntryNotFoundError

        if isinstance(e, LocalEntryNotFoundError) or isinstance(e.__cause__, LocalEntryNotFoundError) \
                or "offline" in str(e).lower() or "cannot find the requested files" in str(e):
            raise ModelLoadError(f"pipeline {os.fspath(source)!r} is not available offline: no copy in the Hugging "
                                 f"Face cache ({os.environ.get('HF_HOME', '~/.cache/huggingface')}); download it "
                                 "there, or save it to a local folder (save_pretrained) and pass that path") from None
        raise ModelLoadError(f"cannot load pipeline {os.fspath(source)!r}: "
                             f"{' '.join(str(e).split('. ')[0].split())}") from None
    if not isinstance(getattr(pipe, "unet", None), nn.Module):
        raise ModelLoadError(f"pipeline {os.fspath(source)!r} ({type(pipe).__name__}) has no UNet to merge")
    pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_pool(sources: Sequence[str], base: str | None = None, *, dtype: str | torch.dtype = "float32",
              device: str | torch.device = "cpu", local_files_only: bool = False) -> ModelPool:
    """Load each named pipeline once; see :func:`pool_from_pipelines`."""
    names = list(dict.fromkeys([*sources, *([base] if base is not None else [])]))
    pipes = {n: load_pipeline(n, dtype=dtype, device=device, local_files_only=local_files_only) for n in names}
    return pool_from_pipelines({n: pipes[n] for n in sources}, pipes[base] if base is not None else None)
