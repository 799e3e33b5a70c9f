"""Merge ops: pure tensor functions with declared knobs (registered in ``evobench.registry.MERGE_OPS``)."""
