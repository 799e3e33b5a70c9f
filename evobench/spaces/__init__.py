"""Merge spaces: genome -> recipe -> model."""
from evobench.spaces.base import MergeSpace, SpaceError

__all__ = ["MergeSpace", "SpaceError", "make_space"]


def space_classes() -> dict[str, type[MergeSpace]]:
    from evobench.spaces.dfs import DFSSpace, PSDFSSpace
    from evobench.spaces.params import ParamSpace
    from evobench.spaces.ps import PSSpace

    return {"params": ParamSpace, "ps": PSSpace, "dfs": DFSSpace, "ps+dfs": PSDFSSpace}


def check_space_options(kind: str, options: dict) -> list[str]:
    """Raise SpaceError for an unknown kind or option name; return the kind's option names."""
    import inspect

    classes = space_classes()
    if kind not in classes:
        raise SpaceError(f"unknown space kind {kind!r} (have: {', '.join(classes)})")
    allowed = [n for n in inspect.signature(classes[kind].__init__).parameters if n not in ("self", "pool")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise SpaceError(f"{kind} space: unknown option(s) {', '.join(unknown)} (options: {', '.join(allowed)})")
    return allowed


def make_space(kind: str, problem, seed: int = 0, **options) -> MergeSpace:
    """Build the ``kind`` space for ``problem`` (options go to the space's constructor)."""
    from evobench.registry import RegistryError

    allowed = check_space_options(kind, options)
    if kind not in problem.space_kinds():
        raise SpaceError(f"problem {problem.name!r} offers no {kind!r} space "
                         f"(it offers: {', '.join(problem.space_kinds()) or 'none'})")
    if "merge_seed" in allowed:
        options.setdefault("merge_seed", seed)
    try:
        return space_classes()[kind](problem.pool, **options)
    except RegistryError as e:
        raise SpaceError(f"{kind} space: {e}") from None
