"""The whole pipeline on a small tree: counts by reason, round trip of the shards, workers, sources."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_recipes.pipeline import build_corpus
from data_recipes.tokenization import load_corpus_tokenizer
from shared.config import ModelConfig
from shared.token_shards import TokenShards

from .helpers import recipe, write_jsonl, write_tree


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipe")
    texts = write_tree(tmp / "tree")
    lines = write_jsonl(tmp / "records.jsonl")
    sources = [
        {"name": "tree", "kind": "tree", "path": str(tmp / "tree")},
        {"name": "records", "kind": "jsonl", "path": str(tmp / "records.jsonl"), "path_field": "path"},
    ]
    out = build_corpus(recipe(tmp / "out", sources, max_file_bytes=2000), keep_work=False)
    return out, texts, lines


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bad_inputs_counted_by_reason_and_listed(built):
    out, texts, _ = built
    rejected = {r["doc_id"]: r["reason"] for r in rows(out / "rejected_inputs.jsonl")}
    assert rejected["tree:python/bad_utf8.py"] == "invalid_utf8"
    assert rejected["tree:python/binary.py"] == "binary"
    assert rejected["tree:python/empty.py"] == "empty"
    assert rejected["tree:python/huge.py"] == "too_large"
    assert rejected["tree:python/dangling.py"].startswith("unreadable")
    assert rejected["records:records.jsonl:2"] == "malformed_jsonl"
    assert rejected["records:records.jsonl:3"] == "missing_text_field"
    assert rejected["records:records.jsonl:5"] == "not_an_object"
    assert rejected["records:records.jsonl:6"] == "invalid_utf8"
    report = json.loads((out / "report.json").read_text())
    read = report["read"]["tree"]["python"]
    assert read["removed"]["invalid_utf8"] == 1 and read["removed"]["binary"] == 1 and read["removed"]["empty"] == 1
    assert report["heuristics"]["tree"]["python"]["removed"] == {"max_line_length": 1}
    assert report["syntax"]["tree"]["python"]["removed"] == {"syntax_error": 1}
    assert report["syntax"]["tree"]["markdown"]["notes"] == {"not_checked": 1}  # passed, but never judged
    assert "notes" not in report["syntax"]["tree"]["rust"]
    assert "stage" in (out / "report.txt").read_text()


def test_every_input_is_accounted_for(built):
    out, texts, lines = built
    kept = {d["doc_id"] for p in sorted(out.glob("shard-*.docs.jsonl")) for d in rows(p)}
    rejected = {r["doc_id"] for r in rows(out / "rejected_inputs.jsonl")}
    removed = {r["doc_id"] for r in rows(out / "removed_documents.jsonl")}
    inputs = {f"tree:{rel}" for rel in texts} | {f"records:records.jsonl:{n}" for n in lines}
    assert kept | rejected | removed == inputs
    assert not (kept & rejected) and not (kept & removed) and not (rejected & removed)


def test_duplicates_removed_first_copy_kept(built):
    out, _, _ = built
    removed = {r["doc_id"]: r for r in rows(out / "removed_documents.jsonl")}
    for ext in ("py", "js", "java", "go", "cpp", "rs"):
        (copy,) = [r for d, r in removed.items() if d.endswith(f"mean_copy.{ext}")]
        assert copy["reason"] == "exact_duplicate" and copy["duplicate_of"].endswith(f"mean.{ext}")


def test_shards_round_trip_to_kept_documents(built):
    out, texts, lines = built
    shards = TokenShards(out, verify=True)
    tok = load_corpus_tokenizer(ModelConfig())
    kept = [d for p in sorted(out.glob("shard-*.docs.jsonl")) for d in rows(p)]
    originals = []
    for d in kept:
        source, rest = d["doc_id"].split(":", 1)
        originals.append(texts[rest] if source == "tree" else lines[int(rest.rsplit(":", 1)[1])])
    assert shards.n_documents == len(kept) and "<|endoftext|>" in "".join(originals)
    stream = np.concatenate(list(shards.token_stream())).tolist()
    decoded = tok.backend_tokenizer.decode(stream, skip_special_tokens=False)
    assert decoded == "".join(t + "<|endoftext|>" for t in originals)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    assert all(int(doc[-1]) == eot and eot not in doc[:-1].tolist() for doc in shards.documents())
    manifest = shards.manifest
    assert sum(manifest["tokens_by_language"].values()) == shards.n_tokens == manifest["n_tokens"]
    assert manifest["tokenizer"]["end_of_text_id"] == eot and len(manifest["tokenizer"]["sha256"]) == 64


def test_workers_do_not_change_the_output(built, tmp_path):
    out, _, _ = built
    sources = json.loads((out / "manifest.json").read_text())["recipe_config"]["sources"]
    two = build_corpus(recipe(tmp_path / "two", sources, max_file_bytes=2000, workers=2))
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in two.iterdir())
    for name in names:
        assert (out / name).read_bytes() == (two / name).read_bytes(), name


def test_hub_and_parquet_sources_read_local_files(tmp_path):
    records = [{"content": f"def f{i}(x):\n    return x + {i}\n\n\nprint(f{i}(1))\n", "lang": "python"} for i in range(3)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "rows.parquet")
    sources = [
        # The hub code path (datasets.load_dataset, streaming) with the generic json builder on a local file.
        {"name": "hub", "kind": "hub", "hub_name": "json", "data_files": [str(tmp_path / "rows.jsonl")],
         "language_field": "lang"},
        {"name": "pq", "kind": "parquet", "path": str(tmp_path / "rows.parquet"), "language_field": "lang"},
    ]  # fmt: skip
    out = build_corpus(recipe(tmp_path / "out", sources, dedup={"exact": False, "near": False}))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokens_by_source"].keys() == {"hub", "pq"}
    assert manifest["n_documents"] == 6 and manifest["tokens_by_language"].keys() == {"python"}


def test_token_budget_caps_a_source(built, tmp_path):
    out, _, _ = built
    sources = json.loads((out / "manifest.json").read_text())["recipe_config"]["sources"]
    sources[0]["max_tokens"] = 200
    capped = json.loads((build_corpus(recipe(tmp_path / "c", sources, max_file_bytes=2000)) / "manifest.json").read_text())
    assert 0 < capped["tokens_by_source"]["tree"] <= 200
    assert capped["mixture"]["sources"]["tree"]["budget_tokens"] == 200
    assert capped["stage_report"]["mixture"]["tree"]


def test_contaminated_document_dropped_and_listed(tmp_path):
    problem = "Return the list of prime factors of n, smallest first, each repeated as often as it divides n."
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"prompt": f'def factorize(n):\n    """{problem}"""\n'}) + "\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "leak.py").write_text(f'import math\n\n\ndef factorize(n):\n    """{problem}"""\n    return []\n')
    (tree / "clean.py").write_text('def add(a, b):\n    """Sum of a and b."""\n    return a + b\n')
    decontamination = {"enabled": True, "allow_hub": False, "require_all": True,
                       "benchmarks": [{"name": "local-eval", "path": str(bench), "fields": ["prompt"]}]}  # fmt: skip
    out = build_corpus(recipe(tmp_path / "out", [{"name": "t", "kind": "tree", "path": str(tree)}],
                              decontamination=decontamination))  # fmt: skip
    (listed,) = rows(out / "decontaminated.jsonl")
    assert listed["doc_id"] == "t:leak.py" and listed["reason"] == "overlap:local-eval"
    kept = [d["doc_id"] for p in sorted(out.glob("shard-*.docs.jsonl")) for d in rows(p)]
    assert kept == ["t:clean.py"]
    assert json.loads((out / "manifest.json").read_text())["decontamination"]["benchmarks"] == {"local-eval": 1}


def test_missing_folder_is_reported_not_silent(tmp_path):
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.py").write_text("def a():\n    return 1\n\n\nprint(a())\n")
    sources = [{"name": "gone", "kind": "tree", "path": str(tmp_path / "nope")},
               {"name": "ok", "kind": "tree", "path": str(tmp_path / "ok")}]  # fmt: skip
    out = build_corpus(recipe(tmp_path / "out", sources))
    (reject,) = rows(out / "rejected_inputs.jsonl")
    assert reject["doc_id"].startswith("gone:") and reject["reason"] == "unreadable folder (FileNotFoundError)"
    assert json.loads((out / "manifest.json").read_text())["n_documents"] == 1
