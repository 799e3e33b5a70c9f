"""Built-in tasks (installed as ``evobench.tasks``); see ``evobench list``."""
