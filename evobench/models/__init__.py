"""Model families: how a state dict becomes a runnable model (and, for block stacks, a layer path)."""

from evobench.models.base import BlockStack, ModelFamily, ModelPool

__all__ = ["BlockStack", "ModelFamily", "ModelPool"]
