"""The scoring engine for language models: requests as data, batched greedy generation with stop
strings, continuation log-likelihoods, and per-request records. It knows no task, merge or metric.

Importing this package needs torch (the ``llm`` extra's tokenizers are only needed to build one).
"""

from evobench.scoring.engine import LMEngine
from evobench.scoring.records import prompt_hash, record
from evobench.scoring.requests import GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest

__all__ = ["GenerateRequest", "Generation", "LMEngine", "Loglikelihood", "LoglikelihoodRequest", "prompt_hash",
           "record"]
