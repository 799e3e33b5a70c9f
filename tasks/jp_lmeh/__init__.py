"""JP-LMEH: the Japanese LM Evaluation Harness suite, one module per subtask and the suite.

Prompts, target delimiters, answer filters and metrics follow lm-evaluation-harness's
``japanese_leaderboard`` task configs; see :mod:`evobench.tasks.jp_lmeh.base` for the prompt
layout, the few-shot draw and the splits, and :mod:`evobench.tasks.jp_lmeh.suite` for the suite.
"""
