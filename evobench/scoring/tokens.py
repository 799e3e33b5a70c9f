"""Tokenisation of scoring requests, done once per request and cached for every later candidate.

The rules follow lm-evaluation-harness's Hugging Face model (``lm_eval/api/model.py``:
``TemplateLM._encode_pair`` and ``loglikelihood``; ``lm_eval/models/huggingface.py``: ``tok_encode``):

* **BOS.** A text is encoded without the tokenizer's special tokens and the BOS token is prepended
  when ``add_bos`` is true, unless the text already starts with the BOS string. ``add_bos=None``
  takes the tokenizer's own default (whether ``tokenizer.encode`` with its default arguments puts
  BOS first), which is what lm-eval does for HF models when ``add_bos_token`` is not given.
* **Context/continuation split.** Trailing whitespace of the context moves to the start of the
  continuation; the whole text ``context + continuation`` is encoded, the context alone is
  encoded, and the continuation's tokens are the whole encoding past the context's length.
* **Empty context.** The context is the single prefix token (BOS, else EOS) and the continuation
  is encoded without special tokens; if the continuation already starts with that token, its
  first token becomes the context instead. The same prefix token stands in for a context or prompt
  whose encoding is empty (lm-eval rejects those).
"""

from __future__ import annotations

from evobench.scoring.requests import GenerateRequest, LoglikelihoodRequest

Tokens = tuple[int, ...]


def default_add_bos(tokenizer) -> bool:
    """Whether ``tokenizer.encode`` with its default arguments puts the BOS token first."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer.encode("a")
    return bool(ids) and ids[0] == bos and tokenizer.encode("a", add_special_tokens=False)[:1] != [bos]


class Tokenization:
    """Encodes requests with one tokenizer and one BOS policy; each distinct request is encoded once.

    The cache maps a request (frozen, hashable) to its token ids and lives as long as this object,
    so the same requests scored for many candidate models are tokenised only the first time.
    """

    def __init__(self, tokenizer, add_bos: bool | None = None):
        self.tokenizer = tokenizer
        self.add_bos = default_add_bos(tokenizer) if add_bos is None else bool(add_bos)
        bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
        self.prefix_token_id = bos if bos is not None else eos
        if self.add_bos and bos is None:
            raise ValueError("add_bos=True but the tokenizer has no BOS token")
        if self.prefix_token_id is None:
            raise ValueError("the tokenizer has neither a BOS nor an EOS token")
        self._bos_text = tokenizer.bos_token if bos is not None else None
        self._prompts: dict[GenerateRequest, Tokens] = {}
        self._pairs: dict[LoglikelihoodRequest, tuple[Tokens, Tokens]] = {}

    def __len__(self) -> int:
        """The number of cached requests."""
        return len(self._prompts) + len(self._pairs)

    def clear(self) -> None:
        """Forget every cached encoding."""
        self._prompts.clear()
        self._pairs.clear()

    def encode(self, text: str) -> Tokens:
        """``text`` encoded without special tokens, with BOS prepended under the BOS rule above."""
        ids = tuple(self.tokenizer.encode(text, add_special_tokens=False))
        if self.add_bos and not (self._bos_text and text.startswith(self._bos_text)):
            ids = (self.tokenizer.bos_token_id, *ids)
        return ids

    def prompt(self, request: GenerateRequest) -> Tokens:
        """The prompt's token ids (never empty)."""
        ids = self._prompts.get(request)
        if ids is None:
            ids = self.encode(request.prompt) or (self.prefix_token_id,)
            self._prompts[request] = ids
        return ids

    def pair(self, request: LoglikelihoodRequest) -> tuple[Tokens, Tokens]:
        """The (context, continuation) token ids; both non-empty, else ``ValueError``."""
        ids = self._pairs.get(request)
        if ids is None:
            ids = self._split(request.context, request.continuation)
            if not ids[1]:
                raise ValueError(f"continuation {request.continuation!r} encodes to no tokens after its context")
            self._pairs[request] = ids
        return ids

    def _split(self, context: str, continuation: str) -> tuple[Tokens, Tokens]:
        prefix = self.prefix_token_id
        if context == "":
            cont = tuple(self.tokenizer.encode(continuation, add_special_tokens=False))
            if cont and cont[0] == prefix:
                return cont[:1], cont[1:]
            return (prefix,), cont
        stripped = context.rstrip()
        context, continuation = stripped, context[len(stripped):] + continuation
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        cont = whole[len(ctx):]
        return (ctx or (prefix,)), cont
