"""Typed configs as data: dataclasses <-> YAML, `a.b=value` overrides, strict validation.

Every recipe owns one dataclass (composed from the pieces below). A run is configured by
`python -m <recipe> [config.yaml] [key=value ...]`; with no YAML the recipe's embedded tiny default is used.
Unknown keys are errors that name the full dotted key, so a typo never silently trains the wrong thing.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the recipe's dataclass."""


# ----------------------------------------------------------------------------- building blocks


@dataclass
class TinyModelConfig:
    """A Qwen2-architecture model built from this config with random weights (no download)."""

    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 688
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    attention_dropout: float = 0.0


@dataclass
class ModelConfig:
    # "tiny" builds a Qwen2-architecture model from `tiny`; anything else is a hub name or local path.
    name_or_path: str = "tiny"
    # None: the model's own tokenizer ("tiny" -> the locally built byte-level BPE).
    tokenizer: str | None = None
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    tiny_vocab_size: int = 4096
    # auto picks flash_attention_2 > sdpa > eager from what is installed and the device.
    attn_implementation: str = "auto"
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    # When the separation probe finds that packed documents attend to each other (shared/separation_probe.py):
    # false stops the run; true trains on one padded row per document instead, recorded in the run folder.
    allow_padded_fallback: bool = False

    def validate(self) -> None:
        allowed = {"auto", "flash_attention_2", "sdpa", "eager"}
        if self.attn_implementation not in allowed:
            raise ConfigError(f"model.attn_implementation must be one of {sorted(allowed)}")


@dataclass
class OptimizerConfig:
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0

    def validate(self) -> None:
        if self.lr <= 0:
            raise ConfigError("train.optimizer.lr must be > 0")
        if len(self.betas) != 2:
            raise ConfigError("train.optimizer.betas needs two values")


@dataclass
class ScheduleConfig:
    # constant: warm-up then flat ("no decay", Code-Qwen). cosine: warm-up then cosine to min_lr_ratio * peak.
    name: str = "cosine"
    warmup_steps: int = 0
    # Used when warmup_steps is 0: a fraction of train.max_steps (3% in the Code-Qwen recipes).
    warmup_ratio: float = 0.0
    min_lr_ratio: float = 0.1

    def validate(self) -> None:
        if self.name not in {"constant", "cosine", "linear"}:
            raise ConfigError("train.schedule.name must be constant, cosine or linear")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError("train.schedule.warmup_ratio must be in [0, 1)")


@dataclass
class TrainConfig:
    max_steps: int = 100
    seq_len: int = 512
    micro_batch_size: int = 8  # rows per rank per micro-step
    grad_accum: int = 1
    seed: int = 1234
    save_every: int = 50
    keep_last: int = 2
    log_every: int = 10
    zero_stage: int = 0
    # auto: bf16 on GPU, fp32 on CPU.
    precision: str = "auto"
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # Names (substrings) of parameters to freeze; empty trains everything.
    freeze: list[str] = field(default_factory=list)
    # A complete checkpoint that does not load: error (stop, naming it and why) or previous (resume from the
    # previous complete checkpoint instead, with a warning). Never a silent restart from step 0.
    on_bad_checkpoint: str = "error"

    def validate(self) -> None:
        if self.max_steps < 1:
            raise ConfigError("train.max_steps must be >= 1")
        if self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError("train.zero_stage must be 0, 1, 2 or 3")
        if self.precision not in {"auto", "bf16", "fp16", "fp32"}:
            raise ConfigError("train.precision must be auto, bf16, fp16 or fp32")
        if self.micro_batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("train.micro_batch_size and train.grad_accum must be >= 1")
        if self.on_bad_checkpoint not in {"error", "previous"}:
            raise ConfigError("train.on_bad_checkpoint must be error or previous")


@dataclass
class ChatDataConfig:
    """Chat JSONL (`{"messages": [...]}`) for SFT."""

    train_files: list[str] = field(default_factory=list)
    # all: every assistant turn is trained; last: only the final one.
    train_on: str = "all"
    default_system_prompt: str | None = "You are a helpful assistant."
    # Sample longer than train.seq_len: truncate (the last assistant turn) or skip; both are counted.
    overlong: str = "truncate"
    # packed (best-fit decreasing bins) or padded (one conversation per row; for comparison).
    packing: str = "packed"
    # A malformed line or invalid conversation: error (stop, naming file and line) or skip (counted by reason).
    bad_records: str = "error"

    def validate(self) -> None:
        if self.train_on not in {"all", "last"}:
            raise ConfigError("data.train_on must be all or last")
        if self.overlong not in {"truncate", "skip"}:
            raise ConfigError("data.overlong must be truncate or skip")
        if self.packing not in {"packed", "padded"}:
            raise ConfigError("data.packing must be packed or padded")
        if self.bad_records not in {"error", "skip"}:
            raise ConfigError("data.bad_records must be error or skip")


@dataclass
class RunConfig:
    """Fields every training recipe has (the common override keys of DESIGN.md)."""

    run_name: str = "tiny"
    runs_dir: str = "runs"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ----------------------------------------------------------------------------- dict <-> dataclass


def _is_optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting the few safe cases (int -> float, list -> tuple)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        errors = []
        for arm in get_args(tp):
            if arm is type(None):
                continue
            try:
                return _coerce(value, arm, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=key + ".")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if args and len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=False)))
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        vt = get_args(tp)[1] if get_args(tp) else Any
        return {k: _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads 3e-5 (no dot) as a string; accept numeric strings for floats only.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict; unknown keys raise ConfigError naming the dotted key."""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!s} (valid keys under '{prefix or '.'}': {sorted(names)})"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    obj = cls(**kwargs)
    validate(obj)
    return obj


def to_dict(obj: Any) -> Any:
    """Plain nested dicts/lists (tuples become lists) for YAML."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def validate(obj: Any) -> None:
    """Run `validate()` of a dataclass (the nested ones were validated when they were built)."""
    check = getattr(obj, "validate", None)
    if callable(check):
        check()


# ----------------------------------------------------------------------------- YAML and command line


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value")
    key, raw = item.split("=", 1)
    if not key:
        raise ConfigError(f"override {item!r} has no key")
    value = yaml.safe_load(raw) if raw != "" else ""
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part} is not a mapping")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """YAML file (optional) + `a.b=value` overrides -> validated `cls`.

    A YAML may name `base: other.yaml` (relative to itself) to inherit from another file of the same recipe.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = _load_with_base(Path(path))
    data = apply_overrides(data, list(overrides or []))
    return from_dict(cls, data)


def _load_with_base(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(_load_with_base((path.parent / base).resolve()), data)


def parse_cli(cls: type[T], argv: list[str] | None, default_path: str | Path | None) -> T:
    """`[config.yaml] [key=value ...]` -> config. The first argument is a YAML path unless it has '='."""
    args = list(sys.argv[1:] if argv is None else argv)
    path: str | Path | None = default_path
    if args and "=" not in args[0]:
        path = args.pop(0)
        if not Path(path).exists():
            raise ConfigError(f"config file {path} does not exist")
    return load_config(cls, path, args)


def save_config(cfg: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    tmp.replace(path)


def dump(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)

