"""The stage report: per stage, source and language, how many documents and bytes came in, were kept, and
were removed for which reason. Plain nested dicts; the final stage replays every item's verdicts into one."""

from __future__ import annotations

from collections.abc import Iterable

STAGES = ("read", "exact_dedup", "language", "heuristics", "syntax", "decontamination", "near_dedup", "mixture")


def _cell() -> dict:
    return {"docs_in": 0, "bytes_in": 0, "docs_kept": 0, "bytes_kept": 0, "removed": {}}


class StageReport:
    def __init__(self, data: dict | None = None):
        # stage -> source -> language -> cell
        self.data: dict[str, dict[str, dict[str, dict]]] = data or {}

    def add(self, stage: str, source: str, language: str, n_bytes: int, removed: str | None,
            note: str | None = None) -> None:  # fmt: skip
        """Count one document; `note` tallies kept documents the stage passed without judging (not_checked)."""
        cell = self.data.setdefault(stage, {}).setdefault(source, {}).setdefault(language, _cell())
        if note is not None:
            cell.setdefault("notes", {})[note] = cell.get("notes", {}).get(note, 0) + 1
        cell["docs_in"] += 1
        cell["bytes_in"] += n_bytes
        if removed is None:
            cell["docs_kept"] += 1
            cell["bytes_kept"] += n_bytes
        else:
            cell["removed"][removed] = cell["removed"].get(removed, 0) + 1

    def to_dict(self) -> dict:
        """Stages in pipeline order, everything else sorted: the same report serialises to the same bytes."""
        order = {s: i for i, s in enumerate(STAGES)}
        return {
            stage: {
                src: {lang: _sorted_cell(c) for lang, c in sorted(langs.items())}
                for src, langs in sorted(self.data[stage].items())
            }
            for stage in sorted(self.data, key=lambda s: (order.get(s, len(order)), s))
        }

    def rows(self) -> Iterable[tuple[str, str, str, dict]]:
        for stage, by_source in self.to_dict().items():
            for source, by_lang in by_source.items():
                for lang, cell in by_lang.items():
                    yield stage, source, lang, cell

    def table(self) -> str:
        """Human-readable: one line per stage, source and language."""
        header = f"{'stage':<16}{'source':<14}{'language':<12}{'in':>8}{'kept':>8}{'MB kept':>9}  removed by reason"
        lines = [header, "-" * len(header)]
        for stage, source, lang, c in self.rows():
            reasons = ", ".join(f"{r}={n}" for r, n in c["removed"].items()) or "-"
            if c.get("notes"):
                reasons += "  (kept unjudged: " + ", ".join(f"{k}={n}" for k, n in c["notes"].items()) + ")"
            lines.append(
                f"{stage:<16}{source[:13]:<14}{lang:<12}{c['docs_in']:>8}{c['docs_kept']:>8}"
                f"{c['bytes_kept'] / 1e6:>9.2f}  {reasons}"
            )
        return "\n".join(lines)


def _sorted_cell(cell: dict) -> dict:
    out = {**cell, "removed": dict(sorted(cell["removed"].items()))}
    if "notes" in cell:
        out["notes"] = dict(sorted(cell["notes"].items()))
    return out
