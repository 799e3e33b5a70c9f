"""Merge spaces: genome -> recipe -> model."""
from evobench.spaces.base import MergeSpace, SpaceError

__all__ = ["MergeSpace", "SpaceError", "make_space"]


def make_space(kind: str, problem, seed: int = 0, **options) -> MergeSpace:
    """Build the ``kind`` space for ``problem`` (options go to the space's constructor)."""
    from evobench.spaces.dfs import DFSSpace, PSDFSSpace
    from evobench.spaces.params import ParamSpace
    from evobench.spaces.ps import PSSpace

    classes = {"params": ParamSpace, "ps": PSSpace, "dfs": DFSSpace, "ps+dfs": PSDFSSpace}
    if kind not in classes:
        raise SpaceError(f"unknown space kind {kind!r} (have: {', '.join(classes)})")
    if kind not in problem.space_kinds():
        raise SpaceError(f"problem {problem.name!r} offers no {kind!r} space "
                         f"(it offers: {', '.join(problem.space_kinds()) or 'none'})")
    if kind in ("ps", "ps+dfs"):
        options.setdefault("merge_seed", seed)
    return classes[kind](problem.pool, **options)
