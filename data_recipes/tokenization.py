"""The tokenizer of a corpus build and its identity (name + sha256 of tokenizer.json) for the manifest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shared.config import ModelConfig
from shared.tokenizer import ENDOFTEXT


def load_corpus_tokenizer(cfg: ModelConfig):
    """The same tokenizer the trainer gets from shared.modeling.load_tokenizer(cfg)."""
    name = cfg.tokenizer or cfg.name_or_path
    if name in ("tiny", "tiny-bpe"):
        # What load_tokenizer does for tiny, without importing torch (seconds per worker and per test run).
        from shared.tokenizer import load_tiny_tokenizer

        return load_tiny_tokenizer(cfg.tiny_vocab_size)
    from shared.modeling import load_tokenizer

    return load_tokenizer(cfg)


def tokenizer_json_path(tokenizer, cfg: ModelConfig) -> Path | None:
    name = cfg.tokenizer or cfg.name_or_path
    if name in ("tiny", "tiny-bpe"):
        from shared.tokenizer import tiny_tokenizer_dir

        return tiny_tokenizer_dir(cfg.tiny_vocab_size) / "tokenizer.json"
    local = Path(os.path.expanduser(name)) / "tokenizer.json"
    if local.exists():
        return local
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "tokenizer.json")
        return Path(cached) if isinstance(cached, str) else None
    except Exception:
        return None


def end_of_text_id(tokenizer) -> int:
    token_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    if token_id is None or token_id == tokenizer.unk_token_id:
        token_id = tokenizer.eos_token_id
    if token_id is None:
        raise ValueError("tokenizer has neither <|endoftext|> nor an eos token to end documents with")
    return int(token_id)


def tokenizer_identity(tokenizer, cfg: ModelConfig) -> dict:
    path = tokenizer_json_path(tokenizer, cfg)
    if path is not None and path.exists():
        digest, what = hashlib.sha256(path.read_bytes()).hexdigest(), "tokenizer.json"
    else:  # no file to hash: the serialised backend is the same content
        digest, what = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest(), "serialised backend"
    return {
        "name": cfg.tokenizer or cfg.name_or_path,
        "tiny_vocab_size": cfg.tiny_vocab_size if (cfg.tokenizer or cfg.name_or_path).startswith("tiny") else None,
        "vocab_size": len(tokenizer),
        "sha256": digest,
        "sha256_of": what,
        "end_of_text_id": end_of_text_id(tokenizer),
    }


def fast_backend(tokenizer):
    """The Rust tokenizer, set to treat special-token text in documents as plain text (shards stay exact)."""
    backend = tokenizer.backend_tokenizer
    backend.encode_special_tokens = True
    return backend
