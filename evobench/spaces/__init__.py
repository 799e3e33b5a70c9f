"""Merge spaces: genome -> recipe -> model."""
from evobench.spaces.base import MergeSpace, SpaceError

__all__ = ["MergeSpace", "SpaceError"]
