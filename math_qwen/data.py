"""Math SFT data: chat JSONL in, packed rows with the loss on assistant turns only out (Qwen report 5.1).

Real runs train on chat JSONL made by data_recipes.sft_data from GSM8K train / MATH train (a system prompt,
the question, the solution ending in `#### n` or containing `\\boxed{}`), decontaminated against the test sets.
The tiny default builds the synthetic arithmetic problems of data_recipes.synthetic_math into the run folder
(`<run>/data/`: train chats, train question/answer file, held-out problems) and, so that training and every
evaluator of the suite (eval.math --chat, eval.watch, just math-eval) see the same prompt, writes the train
chats in the evaluator's zero-shot ChatML form: the default system turn and `chat_user_message` as user turn.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from data_recipes.config import DecontaminationConfig
from data_recipes.math_data import MathTinyConfig, build_math_tiny
from eval.math.prompts import chat_user_message
from shared.chat import IGNORE_INDEX, TokenizedChat, read_jsonl
from shared.chat_dataset import tokenize_chat_files
from shared.config import ChatDataConfig, ConfigError
from shared.data import SFTRows
from shared.packing import pack_conversations, pad_conversations

log = logging.getLogger(__name__)

# The chat template's default system turn (shared/tokenizer.py CHATML_TEMPLATE): what eval.math --chat renders.
EVAL_SYSTEM_PROMPT = "You are a helpful assistant."
HELDOUT_NAME = "heldout.jsonl"


@dataclass
class SyntheticDataConfig:
    """The tiny default's problems (data_recipes.synthetic_math), built when data.train_files is empty."""

    n_train: int = 4000
    n_heldout: int = 300
    seed: int = 0
    # Against GSM8K/MATH test files when at hand ($QS_EVAL_DATA); the tiny default never downloads.
    decontamination: DecontaminationConfig = field(default_factory=lambda: MathTinyConfig().decontamination)


@dataclass
class MathDataConfig(ChatDataConfig):
    # Qwen report 5.1: "the loss is masked on system and user inputs". false trains on every token (ablation).
    mask_system_and_user: bool = True
    # GSM8K-style (question/answer) or MATH-style (problem/solution) problems for the held-out evaluation;
    # empty with the synthetic default = its held-out split. Copied into <run>/data/heldout.jsonl.
    heldout_file: str = ""
    heldout_benchmark: str = "gsm8k"
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)

    def validate(self) -> None:
        super().validate()
        if self.heldout_benchmark not in ("gsm8k", "math"):
            raise ConfigError("data.heldout_benchmark must be gsm8k or math")


@dataclass
class PreparedData:
    train_files: list[Path]
    heldout_file: Path | None  # inside the run folder (data/heldout.jsonl), where eval.watch looks
    qa_file: Path | None  # question/answer rows of the train problems (synthetic default only)


def to_eval_chat(conversation: dict, benchmark: str = "gsm8k") -> dict:
    """The same problem and solution with the evaluator's zero-shot ChatML prompt (system and user turns)."""
    messages = conversation["messages"]
    user = next(m["content"] for m in messages if m["role"] == "user")
    answer = next(m["content"] for m in reversed(messages) if m["role"] == "assistant")
    return {"messages": [{"role": "system", "content": EVAL_SYSTEM_PROMPT},
                         {"role": "user", "content": chat_user_message(benchmark, user)},
                         {"role": "assistant", "content": answer}]}  # fmt: skip


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def prepare_synthetic(data_dir: Path, cfg: SyntheticDataConfig) -> PreparedData:
    """Build the synthetic problems into data_dir (deterministic from the seed, cheap, rebuilt on each call)."""
    paths = build_math_tiny(data_dir, cfg.n_train, cfg.n_heldout, cfg.seed, cfg.decontamination)
    chats = [to_eval_chat(obj) for _, obj in read_jsonl(paths["train"])]
    train = data_dir / "train_chat.jsonl"
    _write_jsonl(train, chats)
    log.info("synthetic math data: %d train chats, held-out %s", len(chats), paths["heldout"])
    return PreparedData([train], paths["heldout"], paths["train_qa"])


def prepare_data(cfg: MathDataConfig, run_dir: Path) -> PreparedData:
    """The train files and held-out problems of a run (the synthetic default when data.train_files is empty)."""
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.train_files:
        prepared = prepare_synthetic(data_dir, cfg.synthetic)
        if cfg.heldout_file:
            prepared.heldout_file = _copy_heldout(Path(cfg.heldout_file), data_dir)
        return prepared
    missing = [f for f in cfg.train_files if not Path(f).exists()]
    if missing:
        raise FileNotFoundError(f"data.train_files: {missing} not found (build them with data_recipes.sft_data)")
    heldout = _copy_heldout(Path(cfg.heldout_file), data_dir) if cfg.heldout_file else None
    return PreparedData([Path(f) for f in cfg.train_files], heldout, None)


def _copy_heldout(source: Path, data_dir: Path) -> Path:
    if not source.exists():
        raise FileNotFoundError(f"data.heldout_file {source} not found")
    target = data_dir / HELDOUT_NAME
    if source.resolve() != target.resolve():
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return target


def unmasked(sample: TokenizedChat) -> TokenizedChat:
    """Every token a target (the ablation of the report's masking)."""
    return TokenizedChat(list(sample.input_ids), list(sample.input_ids), sample.truncated)


def math_sft_dataset(files: Sequence[str | Path], tokenizer, cfg: MathDataConfig, seq_len: int) -> SFTRows:
    """Chat JSONL -> packed rows; labels are IGNORE_INDEX on system and user turns (and assistant headers)."""
    samples, report = tokenize_chat_files(files, tokenizer, cfg, seq_len)
    if not samples:
        raise ValueError(f"no trainable conversations in {list(map(str, files))}: {report.to_dict()}")
    if not cfg.mask_system_and_user:
        samples = [unmasked(s) for s in samples]
    pad_id = tokenizer.pad_token_id
    if cfg.packing == "packed":
        rows = pack_conversations(samples, seq_len, pad_id)
    else:
        rows = pad_conversations(samples, pad_id)
    report.rows = len(rows)
    report.tokens = sum(len(r.input_ids) for r in rows)
    report.target_tokens = sum(r.n_targets for r in rows)
    report.pad_tokens = report.tokens - sum(len(s.input_ids) for s in samples)
    masked = sum(int((r.labels == IGNORE_INDEX).sum()) for r in rows) - report.pad_tokens
    log.info("math SFT data: %d conversations -> %d rows, %d target tokens, %d masked prompt tokens",
             report.kept, report.rows, report.target_tokens, masked)  # fmt: skip
    return SFTRows(rows, report)
