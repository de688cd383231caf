"""Chat JSONL files -> packed training rows, with a data report that accounts for every conversation."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared.chat import (
    ChatFormatError,
    TokenizedChat,
    fit_to_length,
    read_jsonl,
    tokenize_chat,
    validate_messages,
)
from shared.config import ChatDataConfig
from shared.packing import Row, pack_conversations, pad_conversations

log = logging.getLogger(__name__)


@dataclass
class DataReport:
    """What happened to each input conversation: kept, truncated, or skipped by reason. Nothing vanishes."""

    read: int = 0
    kept: int = 0
    truncated: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # first occurrence of each skip reason
    rows: int = 0
    tokens: int = 0
    target_tokens: int = 0
    pad_tokens: int = 0

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, where)

    def to_dict(self) -> dict:
        return {
            "read": self.read,
            "kept": self.kept,
            "truncated": self.truncated,
            "skipped": dict(self.skipped),
            "skip_examples": self.examples,
            "rows": self.rows,
            "tokens": self.tokens,
            "target_tokens": self.target_tokens,
            "pad_fraction": self.pad_tokens / self.tokens if self.tokens else 0.0,
        }


def tokenize_chat_files(
    files: Sequence[str | Path], tokenizer, cfg: ChatDataConfig, seq_len: int
) -> tuple[list[TokenizedChat], DataReport]:
    report = DataReport()
    samples: list[TokenizedChat] = []
    for path in files:
        for n, obj in read_jsonl(path, skip_malformed=cfg.bad_records == "skip"):
            report.read += 1
            where = f"{path}:{n}"
            try:
                if isinstance(obj, ChatFormatError):
                    raise obj
                messages = validate_messages(obj, where)
            except ChatFormatError as e:
                if cfg.bad_records == "error":
                    raise
                report.skip(e.reason, str(e))
                continue
            sample = tokenize_chat(
                messages, tokenizer, train_on=cfg.train_on, default_system_prompt=cfg.default_system_prompt
            )
            fitted = fit_to_length(sample, seq_len, cfg.overlong)
            if fitted is None:
                report.skip("overlong", f"{where}: {len(sample.input_ids)} tokens > seq_len {seq_len}")
                continue
            report.truncated += fitted.truncated
            report.kept += 1
            samples.append(fitted)
    return samples, report


def build_sft_rows(
    files: Sequence[str | Path], tokenizer, cfg: ChatDataConfig, seq_len: int
) -> tuple[list[Row], DataReport]:
    """Tokenise, mask, fit and pack (or pad) every conversation of `files`."""
    samples, report = tokenize_chat_files(files, tokenizer, cfg, seq_len)
    if not samples:
        raise ValueError(f"no trainable conversations in {list(map(str, files))}: {report.to_dict()}")
    pad_id = tokenizer.pad_token_id
    rows = pack_conversations(samples, seq_len, pad_id) if cfg.packing == "packed" else pad_conversations(samples, pad_id)
    report.rows = len(rows)
    report.tokens = sum(len(r.input_ids) for r in rows)
    report.target_tokens = sum(r.n_targets for r in rows)
    report.pad_tokens = report.tokens - sum(len(s.input_ids) for s in samples)
    log.info("SFT data: %s", report.to_dict())
    return rows, report
