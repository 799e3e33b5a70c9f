"""Tiny, real language models built in code: a byte-level BPE tokenizer and Llama models from configs.

Everything here is deterministic and offline, so tests and the embedded suites exercise the real
Hugging Face classes (``PreTrainedTokenizerFast``, ``LlamaForCausalLM``) without downloading a model.
Requires the ``llm`` extra (transformers, tokenizers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

EOS, PAD = "<|endoftext|>", "<|pad|>"

# A small bilingual corpus: enough merges for English words, Japanese kana/kanji and digits.
DEFAULT_CORPUS = (
    "Tom has 3 apples and buys 5 more. How many apples does he have now? The answer is 8.",
    "A shop sells 12 pens. It sells 4 of them. How many pens are left? The answer is 8.",
    "Question: what is 7 plus 6? Answer: 13. Question: what is 9 minus 2? Answer: 7.",
    "太郎はりんごを3個持っています。さらに5個買いました。りんごは全部で何個ですか。答えは8です。",
    "花子はペンを12本持っています。4本あげました。ペンは何本残っていますか。答えは8です。",
    "今日は天気が良いので、公園を散歩しました。日本語の文章を読みます。",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 + - = ? 。、",
)


def tiny_tokenizer(corpus: Iterable[str] = DEFAULT_CORPUS, vocab_size: int = 320):
    """A byte-level BPE tokenizer trained on ``corpus`` (deterministic); EOS doubles as BOS, PAD apart.

    Byte-level: every string round-trips through encode/decode, Japanese included.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(corpus), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   padding_side="left")


def tiny_llama_config(tokenizer, hidden: int = 32, layers: int = 4, heads: int = 4, kv_heads: int = 2,
                      intermediate: int = 64, max_positions: int = 256, tie_embeddings: bool = False):
    """A ``LlamaConfig`` sized for tests (a few tens of thousands of parameters)."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                       max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       tie_word_embeddings=tie_embeddings)


def tiny_llama(config, seed: int = 0, std: float | None = None):
    """A ``LlamaForCausalLM`` in eval mode with weights drawn from ``seed`` (float32, CPU).

    ``std`` overrides the config's ``initializer_range`` (larger values give less uniform outputs).
    """
    import torch
    from transformers import LlamaForCausalLM

    if std is not None:
        config.initializer_range = float(std)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.eval()


def perturbed_states(model, seeds: Sequence[int], scale: float = 0.02) -> list[dict]:
    """State dicts of ``model`` plus seeded Gaussian noise (stand-ins for fine-tunes of one base)."""
    import torch

    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        out.append({k: v + scale * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v.clone()
                    for k, v in base.items()})
    return out
