"""The tiny math SFT data: `python -m data_recipes.math_data [key=value ...]` -> data/math_tiny/.

train.jsonl: chat JSONL (system / question / GSM8K-style solution) for math SFT; train_qa.jsonl: the same
problems as question/answer (for rejection sampling); heldout.jsonl: question/answer problems for the
evaluator (`python -m eval.math --benchmark gsm8k --problems data/math_tiny/heldout.jsonl ...`), disjoint
from train by template and numbers. The train chats are decontaminated against GSM8K and MATH test when
those files are at hand ($QS_EVAL_DATA); the tiny default never downloads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from data_recipes.config import DecontaminationConfig, standard_benchmarks
from data_recipes.decontaminate import build_index
from data_recipes.sft_data import convert
from data_recipes.synthetic_math import generate_problems
from shared.config import parse_cli


@dataclass
class MathTinyConfig:
    out_dir: str = "data/math_tiny"
    n_train: int = 4000
    n_heldout: int = 300
    seed: int = 0
    decontamination: DecontaminationConfig = field(
        default_factory=lambda: DecontaminationConfig(
            allow_hub=False, benchmarks=[b for b in standard_benchmarks() if b.name in ("gsm8k-test", "math-test")]
        )
    )


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def build_math_tiny(out_dir: str | Path = "data/math_tiny", n_train: int = 4000, n_heldout: int = 300, seed: int = 0,
                    decontamination: DecontaminationConfig | None = None) -> dict[str, Path]:  # fmt: skip
    """Write the tiny math files (regenerated each call: cheap and deterministic); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = generate_problems(n_train, seed, "train", with_keys=True)
    heldout = generate_problems(n_heldout, seed, "heldout", with_keys=True)
    overlap = {(p["template"], tuple(p["numbers"])) for p in train} & {
        (p["template"], tuple(p["numbers"])) for p in heldout
    }
    if overlap:  # cannot happen by construction (split_of); checked because the evaluation depends on it
        raise AssertionError(f"train and held-out share problems: {sorted(overlap)[:3]}")
    paths = {"train_qa": out / "train_qa.jsonl", "heldout": out / "heldout.jsonl", "train": out / "train.jsonl",
             "report": out / "report.json"}  # fmt: skip
    _write_jsonl(paths["train_qa"], [{"question": p["question"], "answer": p["answer"]} for p in train])
    _write_jsonl(paths["heldout"], [{"question": p["question"], "answer": p["answer"]} for p in heldout])
    cfg = decontamination or MathTinyConfig().decontamination
    index = build_index(cfg) if cfg.enabled else build_index(replace(cfg, benchmarks=[]))
    stats = convert("gsm8k", [str(paths["train_qa"])], paths["train"], index)
    report = {"seed": seed, "n_train": stats.written, "n_heldout": len(heldout), "conversion": stats.to_dict(),
              "benchmarks_checked": index.loaded, "benchmarks_missing": sorted(index.missing)}  # fmt: skip
    paths["report"].write_text(json.dumps(report, indent=1))
    return paths


def main(argv: list[str] | None = None) -> None:
    cfg = parse_cli(MathTinyConfig, argv, None)
    paths = build_math_tiny(cfg.out_dir, cfg.n_train, cfg.n_heldout, cfg.seed, cfg.decontamination)
    report = json.loads(paths["report"].read_text())
    print(f"math_tiny: {report['n_train']} train chats, {report['n_heldout']} held-out problems "
          f"(benchmarks checked: {sorted(report['benchmarks_checked']) or 'none'})")  # fmt: skip
    for name, path in paths.items():
        print(f"  {name}: {path}")


if __name__ == "__main__":
    main()
