"""Scoring requests and their results as plain frozen data (hashable, comparable, picklable).

A task turns its documents into requests; :class:`~evobench.scoring.engine.LMEngine` answers them
for one model at a time. Requests are the keys of the engine's tokenisation cache, so equal
requests are tokenised once however many candidates score them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

StopReason = Literal["stop", "eos", "length"]


@dataclass(frozen=True)
class GenerateRequest:
    """Generation from ``prompt`` until a stop string, the EOS token or ``max_new_tokens``.

    Greedy by default. ``num_beams > 1`` asks for beam search, ``repetition_penalty != 1`` for
    transformers' repetition penalty (logits of tokens already in the sequence divided by it when
    positive, multiplied when negative); neither samples. ``images`` are the images a vision-language
    model sees, one per ``<image>`` placeholder in the prompt, in order: hashable objects with an
    ``open()`` that returns a ``PIL.Image`` (:class:`evobench.lmdata.images.ImageInput`).
    """

    prompt: str
    stop: tuple[str, ...] = ()
    max_new_tokens: int = 256
    num_beams: int = 1
    repetition_penalty: float = 1.0
    images: tuple[Any, ...] = ()

    @property
    def plain(self) -> bool:
        """Greedy text-only generation (no beams, no repetition penalty, no images)."""
        return self.num_beams == 1 and self.repetition_penalty == 1.0 and not self.images

    def __post_init__(self):
        if isinstance(self.stop, str):  # a lone string would be read as a tuple of characters
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop strings must be non-empty strings, got {self.stop!r}")
        if int(self.max_new_tokens) < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if isinstance(self.num_beams, bool) or not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise ValueError(f"num_beams must be a positive integer, got {self.num_beams!r}")
        penalty = self.repetition_penalty
        if isinstance(penalty, bool) or not isinstance(penalty, int | float) or not 0.0 < penalty < float("inf"):
            raise ValueError(f"repetition_penalty must be a positive number, got {penalty!r}")
        object.__setattr__(self, "repetition_penalty", float(penalty))
        object.__setattr__(self, "images", tuple(self.images))
        if any(not callable(getattr(im, "open", None)) for im in self.images):
            raise ValueError("images must be objects with an open() method that returns a PIL image "
                             "(evobench.lmdata.images.ImageInput)")


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """The log-probability of ``continuation`` following ``context``."""

    context: str
    continuation: str

    def __post_init__(self):
        if not self.continuation:
            raise ValueError("continuation must be a non-empty string")


@dataclass(frozen=True)
class Generation:
    """The answer to a :class:`GenerateRequest`.

    ``text`` is the decoded continuation (special tokens skipped) cut before the first occurrence of
    any stop string. ``n_prompt_tokens`` counts the prompt tokens the model saw (after BOS and any
    left truncation); ``n_new_tokens`` counts the tokens generated, including the one that completed
    a stop string or the EOS token. ``stopped_by`` is ``"stop"`` (then ``stop`` holds the stop string
    that cut the text), ``"eos"`` or ``"length"`` (``max_new_tokens`` reached). ``token_ids`` are the
    generated ids, EOS included when it ended the generation.
    """

    text: str
    n_prompt_tokens: int
    n_new_tokens: int
    stopped_by: StopReason
    stop: str | None = None
    token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Loglikelihood:
    """The answer to a :class:`LoglikelihoodRequest`.

    ``logprob`` is the sum of the log-probabilities of the continuation tokens; ``is_greedy`` says
    whether greedy decoding from the context yields exactly these tokens; ``n_tokens`` counts them.
    """

    logprob: float
    is_greedy: bool
    n_tokens: int
