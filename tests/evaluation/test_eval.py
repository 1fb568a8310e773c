"""The eval command: pairing documents with gold, aggregation, reports, compare, the cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from thinkjson_edge.cli import main
from thinkjson_edge.cli.exit_codes import EXIT_INPUT, EXIT_OK, EXIT_SCHEMA, EXIT_USAGE
from thinkjson_edge.evaluation.dataset import Dataset, find_dataset
from thinkjson_edge.evaluation.report import (
    CHART_FIELD_F1,
    CHART_SECONDS,
    CHART_TRANSITIONS,
    REPORT_JSON,
    REPORT_MD,
    write_report,
)
from thinkjson_edge.evaluation.run import (
    AttemptRecord,
    DocumentRecord,
    EvalSettings,
    RunOutcome,
    read_cached,
)
from thinkjson_edge.evaluation.summary import build_report, summarise
from thinkjson_edge.pipeline.extractor import ExtractOptions

SROIE = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GOLD = {"a": "x", "b": 1}
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}


def invoke(*args: str | Path):
    return CliRunner().invoke(main, ["eval", *map(str, args)])


# --- hand-made records -------------------------------------------------------------


def attempt(
    number: int, value: Any, *, valid: bool = True, found: int = 1, tokens: int = 10
) -> AttemptRecord:
    return AttemptRecord(
        number=number,
        value=value,
        valid=valid,
        schema_errors=0 if valid else 1,
        strings_checked=1,
        strings_found=found,
        generated_tokens=tokens,
        decode_seconds=tokens / 10,
        stop_reason="complete",
    )


def hand_made_records() -> list[DocumentRecord]:
    """Four documents, all with gold GOLD, worked out by hand in the tests below.

    d1: exact at once. d2: attempt 1 has `a` wrong and is invalid, attempt 2 is exact and
    kept. d3: attempt 1 exact, attempt 2 drops `b`, attempt 1 kept. d4: failed, no output.
    """
    return [
        DocumentRecord("d1", "d1.txt", [attempt(1, dict(GOLD))], 1, 2.0),
        DocumentRecord(
            "d2",
            "d2.txt",
            [attempt(1, {"a": "y", "b": 1}, valid=False, found=0), attempt(2, dict(GOLD))],
            2,
            4.0,
        ),
        DocumentRecord(
            "d3",
            "d3.txt",
            [attempt(1, dict(GOLD), tokens=20), attempt(2, {"a": "x"}, tokens=20)],
            1,
            6.0,
        ),
        DocumentRecord("d4", "d4.txt", [], 0, 0.0, error="d4.txt: is empty"),
    ]


def outcome_of(
    records: list[DocumentRecord], self_correct: bool = True, root: str = "/data/set"
) -> RunOutcome:
    dataset = Dataset(Path(root), Path(root) / "schema.json", [], [])
    settings = EvalSettings(options=ExtractOptions(self_correct=self_correct))
    golds = [dict(GOLD) for _ in records]
    return RunOutcome(
        dataset, settings, "tiny", "0" * 64, golds, records, len(records), "2026-01-01T00:00:00"
    )


def test_aggregation_of_hand_made_records() -> None:
    summary, documents = summarise(hand_made_records(), [GOLD] * 4, self_correct=True)

    first = summary["attempt1"]
    assert (first["documents"], first["no_json_output"], first["json_output"]) == (4, 1, 3)
    assert first["mean_match_pct"] == pytest.approx(62.5)  # (1 + .5 + 1 + 0) / 4
    assert first["mean_noise_pct"] == pytest.approx(100 / 6)  # (0 + .5 + 0) / 3
    assert first["exact_match_pct"] == pytest.approx(50.0)
    assert first["schema_valid_pct"] == pytest.approx(50.0)
    assert first["grounding"] == {"checked": 3, "found": 2, "rate_pct": pytest.approx(200 / 3)}

    second = summary["attempt2"]  # d1's attempt 1 carried over
    assert second["mean_match_pct"] == pytest.approx(62.5)  # (1 + 1 + .5 + 0) / 4
    assert second["mean_noise_pct"] == pytest.approx(0.0)
    assert second["exact_match_pct"] == pytest.approx(50.0)

    kept = summary["kept"]
    assert kept["mean_match_pct"] == pytest.approx(75.0)
    assert kept["exact_match_pct"] == pytest.approx(75.0)
    assert kept["schema_valid_pct"] == pytest.approx(75.0)
    assert kept["grounding"]["rate_pct"] == pytest.approx(100.0)
    assert kept["micro"]["tp"] == 6 and kept["micro"]["fp"] == 0 and kept["micro"]["fn"] == 2
    assert kept["micro"]["f1"] == pytest.approx(12 / 14)
    assert kept["per_field"]["a"]["recall"] == pytest.approx(0.75)

    sc = summary["self_correction"]
    assert sc["accuracy_t1_pct"] == pytest.approx(50.0)
    assert sc["accuracy_t2_pct"] == pytest.approx(50.0)
    assert sc["accuracy_kept_pct"] == pytest.approx(75.0)
    assert sc["delta_pct"] == pytest.approx(0.0)
    assert sc["delta_i_to_c_pct"] == pytest.approx(25.0)
    assert sc["delta_c_to_i_pct"] == pytest.approx(25.0)
    assert (sc["second_attempts"], sc["kept_second"]) == (2, 1)
    assert sc["documents"] == {
        "right_to_right": 1,
        "wrong_to_right": 1,
        "right_to_wrong": 1,
        "wrong_to_wrong": 1,
    }
    assert sc["fields"] == {
        "right_to_right": 4,
        "wrong_to_right": 1,
        "right_to_wrong": 1,
        "wrong_to_wrong": 2,
    }

    timing = summary["timing"]  # d4 failed and is not timed
    assert timing["documents_timed"] == 3
    assert (timing["seconds_mean"], timing["seconds_median"], timing["seconds_max"]) == (4, 4, 6)
    assert timing["tokens_per_second"] == pytest.approx(10.0)  # 70 tokens in 7 s

    assert [d["name"] for d in documents] == ["d1", "d2", "d3", "d4"]
    assert documents[1]["scores"]["attempt1"]["wrong"] == ["a"]
    assert documents[3]["scores"]["kept"]["has_output"] is False
    assert documents[3]["error"] == "d4.txt: is empty"


def test_without_self_correction_there_are_no_score_figures() -> None:
    records = [r for r in hand_made_records() if len(r.attempts) < 2]
    summary, documents = summarise(records, [GOLD] * len(records), self_correct=False)
    assert summary["self_correction"] is None
    assert "attempt2" not in summary
    assert summary["kept"] == summary["attempt1"]
    assert set(documents[0]["scores"]) == {"attempt1", "kept"}


def test_report_files_from_hand_made_records(tmp_path: Path) -> None:
    report = build_report(outcome_of(hand_made_records()), tmp_path)
    warnings: list[str] = []
    written = write_report(report, tmp_path, warnings.append)

    assert warnings == []
    names = {p.name for p in written}
    assert names == {REPORT_JSON, REPORT_MD, CHART_FIELD_F1, CHART_TRANSITIONS, CHART_SECONDS}
    loaded = json.loads((tmp_path / REPORT_JSON).read_text(encoding="utf-8"))
    assert loaded["settings"]["model"] == "tiny"
    assert loaded["settings"]["self_correct"] is True
    assert loaded["dataset"]["errors"] == 1
    markdown = (tmp_path / REPORT_MD).read_text(encoding="utf-8")
    assert "| mean field match % | 62.5 | 62.5 | 75.0 |" in markdown
    assert "| documents (exact match) | 1 | 1 | 1 | 1 |" in markdown
    assert "![field_f1.png](field_f1.png)" in markdown
    for chart in (CHART_FIELD_F1, CHART_TRANSITIONS, CHART_SECONDS):
        data = (tmp_path / chart).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


# --- compare -------------------------------------------------------------------------


@pytest.fixture
def two_reports(tmp_path: Path) -> tuple[Path, Path]:
    a = build_report(outcome_of(hand_made_records()), tmp_path / "a")
    only_exact = [r for r in hand_made_records() if r.name != "d4"]
    b = build_report(outcome_of(only_exact, self_correct=False), tmp_path / "b")
    paths = (tmp_path / "a.json", tmp_path / "b.json")
    for path, report in zip(paths, (a, b), strict=True):
        path.write_text(json.dumps(report), encoding="utf-8")
    return paths


def test_compare_prints_both_reports_and_differences(two_reports: tuple[Path, Path]) -> None:
    result = invoke("--compare", *two_reports)
    assert result.exit_code == EXIT_OK, result.output
    lines = result.stdout.splitlines()

    def row(figure: str) -> list[str]:
        line = next(line for line in lines if line.startswith(figure + "  "))
        return line[len(figure) :].split()

    # B: d1-d3 without self-correction; the kept match is 100 % there, 75 % in A.
    assert row("documents") == ["4", "3", "-1"]
    assert row("mean field match %") == ["75.0", "100.0", "+25.0"]
    assert row("micro F1") == ["0.857", "1.000", "+0.143"]
    assert row("SCoRe accuracy@t1 %") == ["50.0", "n/a", "n/a"]
    assert row("F1 a") == ["0.857", "1.000", "+0.143"]
    assert "tiny, think, no-self-correct, 3 documents" in lines[1]
    assert "cover different documents (A: 4, B: 3, 3 in common)" in result.stdout


def test_compare_as_json(two_reports: tuple[Path, Path]) -> None:
    result = invoke("--compare", *two_reports, "--json")
    assert result.exit_code == EXIT_OK, result.output
    compared = json.loads(result.stdout)
    rows = {row["figure"]: row for row in compared["rows"]}
    assert rows["exact match %"]["a"] == pytest.approx(75.0)
    assert rows["exact match %"]["difference"] == pytest.approx(25.0)
    assert rows["SCoRe Δ i→c %"]["b"] is None
    assert compared["a"]["settings"]["self_correct"] is True


def test_compare_refuses_a_file_that_is_not_a_report(
    tmp_path: Path, two_reports: tuple[Path, Path]
) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"value": 1}', encoding="utf-8")
    result = invoke("--compare", two_reports[0], other)
    assert result.exit_code == EXIT_INPUT
    assert "not an evaluation report" in result.stderr


def test_compare_and_data_dir_together_is_a_usage_error(
    tmp_path: Path, two_reports: tuple[Path, Path]
) -> None:
    result = invoke(tmp_path, "--compare", *two_reports)
    assert result.exit_code == EXIT_USAGE
    assert invoke().exit_code == EXIT_USAGE
    assert invoke(tmp_path, "--json").exit_code == EXIT_USAGE


# --- the data folder -------------------------------------------------------------------


def test_flat_layout_pairs_documents_with_gold(tmp_path: Path) -> None:
    for name in ("b.txt", "a.md", "c.txt", "c.html", "README.md", "LICENSE", ".hidden"):
        (tmp_path / name).write_text("text", encoding="utf-8")
    for name in ("a.json", "b.json", "c.json", "orphan.json", "schema.json"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    (tmp_path / "sub").mkdir()

    dataset = find_dataset(tmp_path)

    assert [(c.name, c.document.name, c.gold.name) for c in dataset.cases] == [
        ("a", "a.md", "a.json"),
        ("b", "b.txt", "b.json"),
    ]
    reasons = {s.name: s.reason for s in dataset.skipped}
    assert reasons == {
        "c": "several documents share the name (c.html, c.txt)",
        "orphan": "gold file without a document",
    }
    assert dataset.schema_path == tmp_path / "schema.json"


def test_subfolder_layout(tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "gold").mkdir()
    (tmp_path / "documents" / "r1.json").write_text('{"doc": 1}', encoding="utf-8")
    (tmp_path / "documents" / "r2.txt").write_text("text", encoding="utf-8")
    (tmp_path / "gold" / "r1.json").write_text("{}", encoding="utf-8")

    dataset = find_dataset(tmp_path)

    assert [(c.name, str(c.document.relative_to(tmp_path))) for c in dataset.cases] == [
        ("r1", "documents/r1.json")
    ]
    assert [(s.name, s.reason) for s in dataset.skipped] == [("r2", "no gold file gold/r2.json")]


def test_the_sroie_fixture_is_three_cases() -> None:
    dataset = find_dataset(SROIE)
    assert [c.name for c in dataset.cases] == ["006", "015", "017"]
    assert dataset.skipped == []


def beside(data: Path) -> Path:
    """A report folder next to the data folder: one inside it is refused (exit 2)."""
    return data.with_name(f"{data.name}-report")


def test_missing_schema_exits_3(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Total 5.00", encoding="utf-8")
    (tmp_path / "a.json").write_text('{"total": "5.00"}', encoding="utf-8")
    result = invoke(tmp_path, "--out", beside(tmp_path))
    assert result.exit_code == EXIT_SCHEMA, result.output
    assert "no schema.json" in result.stderr


def test_gold_that_is_not_json_exits_4_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (tmp_path / "a.txt").write_text("x 1", encoding="utf-8")
    (tmp_path / "a.json").write_text('{"a": "x",\n "b": }', encoding="utf-8")
    result = invoke(tmp_path, "--out", beside(tmp_path))
    assert result.exit_code == EXIT_INPUT, result.output
    assert "a.json: the gold file is not valid JSON at line 2" in result.stderr
    assert not (beside(tmp_path) / "documents").exists()


def test_a_folder_without_any_gold_exits_4(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (tmp_path / "a.txt").write_text("x 1", encoding="utf-8")
    result = invoke(tmp_path, "--out", beside(tmp_path))
    assert result.exit_code == EXIT_INPUT, result.output
    assert "skipped a.txt: no gold file a.json" in result.stderr
    assert "no document has a gold file" in result.stderr


def test_cache_entries_are_used_only_for_the_same_key(tmp_path: Path) -> None:
    record = hand_made_records()[0]
    entry = tmp_path / "d1.json"
    entry.write_text(json.dumps({"key": "k1", "record": record.to_dict()}), encoding="utf-8")
    cached = read_cached(entry, "k1")
    assert cached is not None and cached.cached and cached.attempts == record.attempts
    assert read_cached(entry, "k2") is None
    entry.write_text('{"key": "k1", "rec', encoding="utf-8")
    assert read_cached(entry, "k1") is None
    assert read_cached(tmp_path / "absent.json", "k1") is None


# --- end to end, with the real model ---------------------------------------------------


def report_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))


@pytest.mark.model
def test_eval_of_three_receipts_then_cache_and_limit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SROIE, data)
    (data / "unlabelled.txt").write_text("TOTAL 5.00", encoding="utf-8")
    out = tmp_path / "report"

    first = invoke(data, "--no-think", "--device", "cpu", "--out", out)

    assert first.exit_code == EXIT_OK, first.output
    assert "skipped unlabelled.txt: no gold file unlabelled.json" in first.stderr
    report = report_of(out)
    assert report["settings"]["think"] is False and report["settings"]["self_correct"] is True
    assert report["settings"]["model"] == "smollm2-135m"
    assert report["dataset"]["evaluated"] == 3 and report["dataset"]["skipped"] == 1
    assert report["run"] == {"computed": 3, "cached": 0}
    summary = report["summary"]
    for view in ("attempt1", "attempt2", "kept"):
        figures = summary[view]
        assert figures["documents"] == 3
        assert figures["no_json_output"] + figures["json_output"] == 3
        for key in ("mean_match_pct", "exact_match_pct", "schema_valid_pct"):
            assert 0 <= figures[key] <= 100
        assert figures["mean_noise_pct"] is None or 0 <= figures["mean_noise_pct"] <= 100
        assert set(figures["per_field"]) == {"address", "company", "date", "total"}
    sc = summary["self_correction"]
    assert sc["problems"] == 3
    assert sc["delta_pct"] == pytest.approx(sc["delta_i_to_c_pct"] - sc["delta_c_to_i_pct"])
    assert sum(sc["fields"].values()) == 12  # four gold fields per receipt
    assert summary["timing"]["tokens_per_second"] > 0
    documents = report["documents"]
    assert [d["name"] for d in documents] == ["006", "015", "017"]
    assert all(d["attempts"] and d["seconds"] > 0 and not d["cached"] for d in documents)
    assert "## Figures" in (out / REPORT_MD).read_text(encoding="utf-8")
    for chart in (CHART_FIELD_F1, CHART_TRANSITIONS, CHART_SECONDS):
        data_bytes = (out / chart).read_bytes()
        assert data_bytes.startswith(PNG_MAGIC) and len(data_bytes) > 5000
    assert sorted(p.name for p in (out / "documents").iterdir()) == [
        "006.json",
        "015.json",
        "017.json",
    ]

    again = invoke(data, "--no-think", "--device", "cpu", "--out", out)
    assert again.exit_code == EXIT_OK, again.output
    cached = report_of(out)
    assert cached["run"] == {"computed": 0, "cached": 3}
    assert all(d["cached"] for d in cached["documents"])
    # The very same records: the model did not run again.
    for before, after in zip(documents, cached["documents"], strict=True):
        assert after["seconds"] == before["seconds"]
        assert after["attempts"] == before["attempts"]
    assert cached["summary"]["kept"] == summary["kept"]

    limited = invoke(data, "--no-think", "--device", "cpu", "--out", out, "--limit", "1")
    assert limited.exit_code == EXIT_OK, limited.output
    one = report_of(out)
    assert one["settings"]["limit"] == 1
    assert [d["name"] for d in one["documents"]] == ["006"]
    assert one["run"] == {"computed": 0, "cached": 1}
    assert one["summary"]["kept"]["documents"] == 1


@pytest.mark.model
def test_failed_document_counts_as_no_output_and_fresh_recomputes(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "empty.json").write_text(json.dumps(GOLD), encoding="utf-8")
    out = beside(tmp_path)
    args = (tmp_path, "--no-think", "--no-self-correct", "--device", "cpu", "--out", out)

    first = invoke(*args)
    assert first.exit_code == EXIT_OK, first.output
    assert "empty: " in first.stderr and "counted as no JSON output" in first.stderr
    report = report_of(out)
    assert report["dataset"]["errors"] == 1
    assert report["summary"]["kept"]["no_json_output"] == 1
    assert report["summary"]["kept"]["mean_match_pct"] == 0
    assert report["summary"]["self_correction"] is None
    assert report["run"]["computed"] == 1

    assert invoke(*args).exit_code == EXIT_OK
    assert report_of(out)["run"]["computed"] == 0
    assert invoke(*args, "--fresh").exit_code == EXIT_OK
    assert report_of(out)["run"]["computed"] == 1


def test_without_matplotlib_json_and_markdown_are_still_written(tmp_path: Path) -> None:
    report = build_report(outcome_of(hand_made_records()), tmp_path)
    (tmp_path / "in.json").write_text(json.dumps(report), encoding="utf-8")
    # A fresh interpreter in which `import matplotlib` fails, as on an install without it.
    code = (
        "import json, sys; from pathlib import Path; sys.modules['matplotlib'] = None;"
        "from thinkjson_edge.evaluation.report import write_report;"
        "folder = Path(sys.argv[1]);"
        "report = json.loads((folder / 'in.json').read_text());"
        "print([p.name for p in write_report(report, folder, print)])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "matplotlib is not installed" in done.stdout
    assert "pip install 'thinkjson-edge[eval]'" in done.stdout
    assert "['report.json', 'report.md']" in done.stdout
    assert "no charts were drawn" in (tmp_path / REPORT_MD).read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.model
def test_eval_with_parallel_documents_scores_as_one_at_a_time(tmp_path: Path) -> None:
    """--parallel 3: the three receipts are extracted together; the records come back in
    case order with the figures of one at a time."""
    fast = ("--no-think", "--no-self-correct", "--device", "cpu")
    one = invoke(SROIE, *fast, "--out", tmp_path / "one")
    three = invoke(SROIE, *fast, "--parallel", "3", "--out", tmp_path / "three")
    assert one.exit_code == three.exit_code == EXIT_OK, three.output
    alone, together = report_of(tmp_path / "one"), report_of(tmp_path / "three")
    assert together["run"] == {"computed": 3, "cached": 0}
    assert [d["name"] for d in together["documents"]] == ["006", "015", "017"]
    assert together["summary"]["kept"]["per_field"] == alone["summary"]["kept"]["per_field"]
