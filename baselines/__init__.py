"""Built-in search baselines (installed as ``evobench.baselines``); see ``evobench list``.

Entries are registered lazily in :mod:`evobench.registry`; each module here holds one method.
"""
