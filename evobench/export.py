"""`evobench merge`: write a merged checkpoint from a ``ps``, ``dfs`` or ``ps+dfs`` recipe, streamed.

The recipe comes from a run of a comparison (its folder under ``runs/``: the exact knob values are
rebuilt from its ``best_genome.npy``, so the checkpoint is bit for bit the model the run recommended)
or from a recipe JSON (``run.json``, a ``best_recipe.json``, or the recipe itself: knob values as
:meth:`~evobench.spaces.ps.PSSpace.decode` writes them, rounded to 6 decimals). The sources are
``.safetensors`` files or model folders (``model.safetensors`` or shards with their index), named
as in the recipe (``--sources en-math=a.safetensors,ja=b.safetensors``), the base likewise (a recipe
whose base is ``zeros`` needs none). From model folders the output also gets the first source's
config and tokenizer files, which every source must share (another architecture or tokenizer is
refused), so the output folder loads with ``from_pretrained``. The merge runs tensor by tensor
(:func:`evobench.merge.stream.merge_files`); the output folder holds ``model.safetensors`` and
``recipe.json`` (the recipe, the exact knob values per group, and the SHA-256 of every input file and
of the output) and appears whole or not at all (written as a temporary folder, then renamed).

A layer path (``dfs``; ``ps+dfs`` merges A' first, into the temporary folder, then routes through
``[A', sources...]``) is written as the plain model of one block per step that
:mod:`evobench.merge.fold` folds it into, its rule found from the sources: a causal LM's
``config.json`` (written to the output with ``num_hidden_layers`` = the path's length), or the
digits residual MLP's tensor names. ``recipe.json`` then holds the exact path, its scales and the
cumulative scales folded into each block.

Recipe groups map to tensors as the ``ps`` space made them: ``*`` is every tensor (granularity
``model``), a tensor's own name (``tensor``), or a name prefix such as ``model.layers.3`` or
``down_blocks.0`` with an ``outside ...`` group for the rest (``layer``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evobench.config import ConfigError
from evobench.errors import FoldError

_KINDS = ("ps", "dfs", "ps+dfs", "params")


def _load_recipe(where: Path) -> tuple[dict[str, Any], np.ndarray | None, dict[str, Any]]:
    """(recipe, exact genome or None, the run's space options for the recipe's kind) from a run folder,
    a run.json / best_recipe.json or a recipe file."""
    genome = None
    f = where / "run.json" if where.is_dir() else where
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"merge: {str(where)!r} is not a run folder or a recipe file ({type(e).__name__}: {e})") from None
    recipe = data.get("recipe", data) if isinstance(data, dict) else None
    kind = recipe.get("kind") if isinstance(recipe, dict) else None
    if kind not in _KINDS:
        raise ConfigError(f"merge: {str(where)!r} holds no ps, dfs, ps+dfs or params recipe (kind {kind!r})")
    if kind == "params" and not (f.name == "run.json" and (f.parent / "best_model.safetensors").is_file()):
        raise ConfigError(f"merge: {str(where)!r}: a params recipe is its run's weights; give the run folder "
                          "that holds its best_model.safetensors")
    if "error" in recipe or kind == "ps+dfs" and "error" in (recipe.get("dfs") or {}):
        raise ConfigError(f"merge: {str(where)!r}: the recipe is not a valid model "
                          f"({recipe.get('error') or recipe['dfs']['error']})")
    if (f.parent / "best_genome.npy").exists():
        genome = np.load(f.parent / "best_genome.npy", allow_pickle=False)
    options: dict[str, Any] = {}
    if f.name == "run.json":
        config = f.parent.parent.parent / "config.json"  # the comparison's, beside runs/
        if config.is_file():
            spaces = (json.loads(config.read_text(encoding="utf-8")).get("config") or {}).get("spaces") or {}
            options = dict(spaces.get(kind) or {})
        if isinstance(data.get("seed"), int):  # a space's merge_seed defaults to the run's seed
            options.setdefault("merge_seed", data["seed"])
    return recipe, genome, options


def _values(recipe: dict[str, Any], knobs: list, genome: np.ndarray | None) -> dict[str, dict[str, list[float]]]:
    """Per group: knob name -> per-model values (exact from the genome when there is one)."""
    groups = recipe.get("groups")
    if not isinstance(groups, list) or not groups:
        raise ConfigError("merge: the recipe has no groups")
    models = [m.get("model") for m in groups[0].get("models", [])]
    out: dict[str, dict[str, list[float]]] = {}
    exact = None
    if genome is not None:
        u = np.asarray(genome, dtype=float)
        if u.size != len(groups) * len(knobs) * len(models):
            raise ConfigError(f"merge: best_genome.npy has {u.size} genes, the recipe needs "
                              f"{len(groups)} groups x {len(knobs)} knobs x {len(models)} models")
        u = u.reshape(len(groups), len(knobs), len(models))
        lo = np.array([k.low for k in knobs])[None, :, None]
        hi = np.array([k.high for k in knobs])[None, :, None]
        exact = lo + (hi - lo) * np.clip(u, 0.0, 1.0)  # as the ps space decodes a genome
    for g, group in enumerate(groups):
        rows = group.get("models", [])
        if [m.get("model") for m in rows] != models:
            raise ConfigError(f"merge: group {group.get('tensors')!r} lists other models than the first group")
        vals = {}
        for i, k in enumerate(knobs):
            if exact is not None:
                vals[k.name] = [float(v) for v in exact[g, i]]
            else:
                try:
                    vals[k.name] = [float(m[k.name]) for m in rows]
                except (KeyError, TypeError, ValueError):
                    raise ConfigError(f"merge: group {group.get('tensors')!r} lacks knob {k.name!r}") from None
        out[str(group.get("tensors"))] = vals
    return out


def group_of(tensor: str, groups: list[str]) -> str | None:
    """The recipe group a tensor belongs to (see the module docstring)."""
    if "*" in groups:
        return "*"
    if tensor in groups:
        return tensor
    prefixes = [g for g in groups if tensor.startswith(g + ".")]
    if prefixes:
        return max(prefixes, key=len)
    outside = [g for g in groups if g.startswith("outside")]
    return outside[0] if outside else None


class _Zeros(Mapping[str, torch.Tensor]):
    """A base of zeros shaped like ``like``'s tensors (a recipe searched without a shared base)."""

    def __init__(self, like: Mapping[str, torch.Tensor]) -> None:
        self.like = like

    def __getitem__(self, name: str) -> torch.Tensor:
        dtype, shape, _, _ = self.like.entries[name]
        return torch.zeros(shape, dtype=dtype)

    def __iter__(self) -> Iterator[str]:
        return iter(self.like)

    def __len__(self) -> int:
        return len(self.like)


def _sha256(path: Path) -> str:
    """SHA-256 of a file, or of a model folder's weight files (names and contents, in name order)."""
    h = hashlib.sha256()
    files = sorted(f for f in path.iterdir() if f.name.endswith(".safetensors")) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            h.update(file.name.encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack")


def _model_files(models: list[str], sources: dict[str, str]) -> list[Path]:
    """The first source folder's files other than weights (config, generation config, tokenizer), to
    be copied beside the merged weights; sources that are folders must agree on them (one line naming
    the first file that differs: another architecture or tokenizer is not merged)."""
    folders = [(n, Path(sources[n])) for n in models if Path(sources[n]).is_dir()]
    if not folders:
        return []
    if len(folders) != len(models):
        raise ConfigError("merge: give every source as a model folder, or every source as a .safetensors file")
    first_name, first = folders[0]
    keep = sorted(f for f in first.iterdir() if f.is_file() and not f.name.endswith(_WEIGHTS)
                  and not f.name.endswith(".index.json") and not f.name.startswith("."))
    for name, folder in folders[1:]:
        for f in keep:
            other = folder / f.name
            if f.name == "config.json":
                a, b = (json.loads(x.read_text(encoding="utf-8")) for x in (f, other)) if other.is_file() else ({}, None)
                a.pop("_name_or_path", None)
                if b is not None:
                    b.pop("_name_or_path", None)
                same = a == b
            else:
                same = other.is_file() and other.read_bytes() == f.read_bytes()
            if not same:
                raise ConfigError(f"merge: source {name!r} has another {f.name} than {first_name!r} (another "
                                  "architecture or tokenizer: not merged)")
    return keep


def _layout(f) -> dict[str, tuple[int, ...]]:
    """A weights file's tensor shapes by name."""
    return {n: e[1] for n, e in f.entries.items()}


def _open_sources(models: list[str], sources: dict[str, str], what: str = "the recipe merges") -> list:
    from evobench.merge.stream import open_weights

    if sorted(sources) != sorted(models):
        raise ConfigError(f"merge: {what} {models}; give --sources NAME=FILE for exactly those "
                          f"(got {sorted(sources)})")
    files = []
    for name in models:
        try:
            files.append(open_weights(sources[name]))
        except ValueError as e:
            raise ConfigError(f"merge: source {name!r}: {e}") from None
    ref = files[0]
    for name, f in zip(models[1:], files[1:], strict=True):
        if _layout(f) != _layout(ref):
            raise ConfigError(f"merge: source {name!r} ({f.path}) has other tensors or shapes than {models[0]!r}")
    return files


def _ps_writer(recipe: dict[str, Any], genome: np.ndarray | None, sources: dict[str, str], base: str | None,
               merge_seed: int):
    """Check a ps recipe against its sources; ``(write(folder), knob values, models)``, where ``write``
    streams the merged weights into ``folder/model.safetensors`` and copies the sources' model files."""
    from evobench.merge.ops import iter_merged
    from evobench.merge.stream import SafetensorsWriter, open_weights, write_stream
    from evobench.registry import MERGE_OPS
    from evobench.spaces.ps import _ARGUMENT, mask_generators

    op_name = recipe.get("merge_method")
    op = MERGE_OPS.get(op_name)
    knobs = [k for k in op.knobs if k.per_model]
    values = _values(recipe, knobs, genome)
    models = [m["model"] for m in recipe["groups"][0]["models"]]
    files = _open_sources(models, sources)
    extras = _model_files(models, sources)
    takes_base = next(iter(inspect.signature(op).parameters)) == "base"
    base_map = None
    if takes_base:
        if base is not None:
            try:
                base_map = open_weights(base)
            except ValueError as e:
                raise ConfigError(f"merge: base: {e}") from None
        elif recipe.get("base") == "zeros":
            base_map = _Zeros(files[0])
        else:
            raise ConfigError(f"merge: op {op_name!r} needs the base model the recipe was searched with (--base FILE)")
    ref = files[0]
    names = list(ref.entries)
    group_names = list(values)
    member = {}
    for t in names:
        g = group_of(t, group_names)
        if g is None:
            raise ConfigError(f"merge: tensor {t!r} belongs to none of the recipe's groups")
        member[t] = g
    unused = sorted(set(group_names) - set(member.values()))
    if unused:
        raise ConfigError(f"merge: recipe groups {unused[:3]} match no tensor of the sources")
    kw = {_ARGUMENT.get(k.name, k.name + "s"): {t: values[member[t]][k.name] for t in names} for k in knobs}
    if "generator" in inspect.signature(op).parameters:
        kw["generator"] = mask_generators(merge_seed, names, len(files))

    def write(folder: Path) -> None:
        write_stream(SafetensorsWriter(folder / "model.safetensors", [(n, *ref.entries[n][:2]) for n in names],
                                       metadata={"evobench.merge_method": str(op_name)}),
                     iter_merged(op, base_map, files, **kw))
        for f in extras:
            shutil.copyfile(f, folder / f.name)

    return write, values, models


def _params_writer(recipe: dict[str, Any], where: Path, sources: dict[str, str]):
    """A params run's weights as a checkpoint: its best_model.safetensors (checked against the
    recipe's parameter count), with the config and tokenizer files of ``sources`` (model folders,
    optional; they must agree) beside it. ``(write(folder), [])``: the recipe merges no inputs."""
    from evobench.merge.stream import open_weights

    folder = where if where.is_dir() else where.parent
    weights = folder / "best_model.safetensors"
    try:
        n = sum(math.prod(e[1]) for e in open_weights(weights).entries.values())
    except ValueError as e:
        raise ConfigError(f"merge: {e}") from None
    if n != recipe.get("n_params"):
        raise ConfigError(f"merge: {weights} holds {n} parameters, the recipe {recipe.get('n_params')!r}")
    extras = _model_files(list(sources), sources) if sources else []

    def write(out: Path) -> None:
        shutil.copyfile(weights, out / "model.safetensors")
        for f in extras:
            shutil.copyfile(f, out / f.name)

    return write, []


def _n_dfs_genes(n_models: int, repeats: int, size: int) -> int:
    """Blocks per model of a DFS genome of ``size`` genes (M * r slots + M * M scales, M = n_models * L)."""
    m = int(round((-repeats + (repeats * repeats + 4 * size) ** 0.5) / 2))
    if m * repeats + m * m != size or m % n_models:
        raise ConfigError(f"merge: best_genome.npy has {size} genes, which no layer path through {n_models} "
                          f"models with repeats {repeats} has")
    return m // n_models


def _layer_path(recipe: dict[str, Any], genome: np.ndarray | None) -> tuple[list[tuple[int, int]], list[float]]:
    """The path and its scales: exact from the genome when there is one, else as the recipe rounds them."""
    from evobench.merge.layer_path import layer_path

    models, repeats = recipe.get("models"), recipe.get("repeats")
    if not isinstance(models, list) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError("merge: the layer-path recipe lacks its models or repeats")
    if genome is not None:
        g = np.asarray(genome, dtype=float).reshape(-1)
        per = _n_dfs_genes(len(models), repeats, g.size)
        slots = per * len(models) * repeats
        lp = layer_path([per] * len(models), repeats, g[:slots], 2.0 * np.clip(g[slots:], 0.0, 1.0))
        return [(int(a), int(b)) for a, b in lp.path], [float(x) for x in lp.scales]
    path, scales = recipe.get("path"), recipe.get("scales")
    try:
        steps = [(int(a), int(b)) for a, b in path]
        return steps, [float(x) for x in scales]
    except (TypeError, ValueError):
        raise ConfigError("merge: the layer-path recipe's path must be [[model, layer], ...] with one scale "
                          "per step") from None


def _fold_rule(files: list, folders: list[Path | None]):
    """How the sources' layer path folds (:mod:`evobench.merge.fold`): from the first model folder's
    config.json (a causal LM), else from the tensor names (the digits residual MLP)."""
    from evobench.merge.fold import decoder_rule
    from evobench.models.mlp import RESMLP_FOLD

    folder = next((f for f in folders if f is not None and (f / "config.json").is_file()), None)
    if folder is not None:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return decoder_rule(str(config.get("model_type")), "model.layers"), config
    names = set(files[0].entries)
    if {"stem.weight", "stem.bias", "head.weight", "head.bias", "blocks.0.weight"} <= names:
        return RESMLP_FOLD, None
    raise ConfigError("merge: cannot tell the sources' architecture to fold the layer path into; give them as "
                      "model folders (their config.json names it)")


def _path_writer(recipe: dict[str, Any], genome: np.ndarray | None, sources: dict[str, str],
                 made_first: bool = False):
    """Check a layer-path recipe against its sources; ``(write(folder, first), path, scales, folded
    steps)``. ``made_first``: model 0 is made on the way (the ps merge of PS+DFS), and ``write`` is
    given its file as ``first``; the sources are the other models."""
    from evobench.merge.fold import fold_steps, fold_tensors
    from evobench.merge.stream import SafetensorsWriter, open_weights, write_stream

    models = list(recipe.get("models") or [])
    path, scales = _layer_path(recipe, genome)
    given = models[1:] if made_first else models
    files = _open_sources(given, sources, "the layer path runs through") if given else []
    extras = _model_files(given, sources) if given else []
    folders = [Path(sources[n]) if Path(sources[n]).is_dir() else None for n in given]
    if any(not (0 <= a < len(models)) for a, _ in path):
        raise ConfigError(f"merge: the layer path steps through model indices outside its {len(models)} models")
    try:
        rule, config = _fold_rule(files, folders)
        steps, _, _ = fold_steps(path, scales, rule)
    except FoldError as e:
        raise ConfigError(f"merge: {e}") from None

    def write(folder: Path, first: Path | None = None) -> None:
        all_files = ([open_weights(first)] if made_first else []) + files
        if len(all_files) > 1 and _layout(all_files[0]) != _layout(all_files[1]):
            raise ConfigError("merge: the ps merge and the sources have other tensors or shapes")
        ref = all_files[0]
        try:
            layout, tensors = fold_tensors(rule, list(ref.entries), path, scales, lambda s, n: all_files[s][n])
        except FoldError as e:
            raise ConfigError(f"merge: {e}") from None
        write_stream(SafetensorsWriter(folder / "model.safetensors",
                                       [(o, *all_files[s].entries[n][:2]) for o, s, n in layout],
                                       metadata={"evobench.layer_path": str(len(steps))}), tensors())
        for f in extras:
            if f.name != "config.json":
                shutil.copyfile(f, folder / f.name)
        if config is not None:
            deep = {k: v for k, v in config.items() if k != "_name_or_path"}
            if isinstance(deep.get("layer_types"), list):
                deep["layer_types"] = [deep["layer_types"][st.layer] for st in steps]
            deep["num_hidden_layers"] = len(steps)
            (folder / "config.json").write_text(json.dumps(deep, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    return write, path, scales, steps


def merge_recipe(recipe_path: str | os.PathLike, sources: dict[str, str], out: str | os.PathLike,
                 base: str | None = None, merge_seed: int | None = None) -> Path:
    """Write ``out/model.safetensors`` and ``out/recipe.json`` (see the module docstring).

    ``merge_seed`` (DARE masks): default the run's own (its comparison's space option, else the run's
    seed, as the space had it), else 0 for a recipe file."""
    recipe, genome, options = _load_recipe(Path(recipe_path))
    kind = recipe["kind"]
    seed = int(options.get("merge_seed", 0)) if merge_seed is None else int(merge_seed)
    out = Path(out)
    if out.exists():
        raise ConfigError(f"merge: {str(out)!r} exists; give a new folder")
    record: dict[str, Any] = {"recipe": recipe, "exact_from_genome": genome is not None}
    if kind == "params":
        write, models = _params_writer(recipe, Path(recipe_path), sources)
        record["exact_from_genome"] = True  # the run's own weights
    elif kind == "ps":
        write, values, models = _ps_writer(recipe, genome, sources, base, seed)
        record.update(merge_seed=seed, knobs=values)
    elif kind == "dfs":
        write, path, scales, folded = _path_writer(recipe, genome, sources)
        models = list(recipe["models"])
        record.update(path=[list(p) for p in path], scales=scales,
                      folded_scales=[st.scale for st in folded])
    else:
        ps, dfs = recipe.get("ps"), recipe.get("dfs")
        if not isinstance(ps, dict) or not isinstance(dfs, dict):
            raise ConfigError("merge: the ps+dfs recipe lacks its ps or dfs part")
        n_ps = None
        if genome is not None:
            from evobench.registry import MERGE_OPS

            op = MERGE_OPS.get(ps.get("merge_method"))
            n_knobs = len([k for k in op.knobs if k.per_model])
            n_ps = len(ps.get("groups") or []) * n_knobs * len((ps.get("groups") or [{}])[0].get("models", []))
        ps_write, values, models = _ps_writer(ps, None if genome is None else genome[:n_ps], sources, base, seed)
        others = {n: sources[n] for n in (dfs.get("models") or [])[1:] if n in sources}
        missing = [n for n in (dfs.get("models") or [])[1:] if n not in sources]
        if missing:
            raise ConfigError(f"merge: the layer path runs through {missing}, which the ps merge does not take")
        path_write, path, scales, folded = _path_writer(dfs, None if genome is None else genome[n_ps:], others,
                                                        made_first=True)

        def write(folder: Path) -> None:  # A' first (a folder of its own inside the temporary output)
            work = folder / ".ps-merge"
            work.mkdir()
            ps_write(work)
            path_write(folder, work / "model.safetensors")
            shutil.rmtree(work)

        record.update(merge_seed=seed, knobs=values, path=[list(p) for p in path], scales=scales,
                      folded_scales=[st.scale for st in folded])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        inputs = {name: {"file": str(Path(sources[name]).resolve()), "sha256": _sha256(Path(sources[name]))}
                  for name in models}
        if base is not None:
            inputs["base"] = {"file": str(Path(base).resolve()), "sha256": _sha256(Path(base))}
        from evobench.jsonio import write_json

        write_json(tmp / "recipe.json", {**record, "inputs": inputs,
                                         "output": {"file": "model.safetensors",
                                                    "sha256": _sha256(tmp / "model.safetensors")}})
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_checkpoint(folder: Path, state: Mapping[str, torch.Tensor], family: Any, recipe: dict[str, Any],
                     provenance: dict[str, str]) -> None:
    """A run's recommended model as a checkpoint folder: ``model.safetensors``, the family's config and
    tokenizer when it has them (``family.save_config(folder)``, e.g. a causal LM: loadable with
    ``from_pretrained``), and ``recipe.json`` (the recipe, the sources' and base's content hashes, the
    output's SHA-256)."""
    from safetensors.torch import save_file

    from evobench.jsonio import nan_to_none, write_json

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(folder / "model.safetensors"))
    family = family.for_state(state)  # a layer path written as a plain model has its own depth
    save_config = getattr(family, "save_config", None)
    if callable(save_config):
        save_config(folder)
    write_json(folder / "recipe.json", nan_to_none({
        "recipe": recipe, "family": getattr(family, "name", ""),
        "inputs": {k[len("model_hash."):]: v for k, v in provenance.items() if k.startswith("model_hash.")},
        "output": {"file": "model.safetensors", "sha256": _sha256(folder / "model.safetensors")}}))
