"""The review interface: the review logic alone, then the real app on the real default model.

The Pilot tests drive ``ReviewApp`` as an operator would (keys only), with llama.cpp running
the embedded model in the app's worker thread; nothing is mocked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console
from tui_data import EXTRACTED, RECEIPT, SCHEMA, VALUES, FixedReviewApp, report

from thinkjson_edge.cli import main
from thinkjson_edge.cli.exit_codes import EXIT_SCHEMA, EXIT_USAGE
from thinkjson_edge.engine.generation import ValueTrace
from thinkjson_edge.errors import OutputWriteError, ReviewError
from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.extractor import ExtractOptions
from thinkjson_edge.pipeline.grounding import Span
from thinkjson_edge.schema import load_schema, pointer, pointer_parts
from thinkjson_edge.tui.app import ReviewApp
from thinkjson_edge.tui.batch_screen import BatchScreen
from thinkjson_edge.tui.dialogs import _legend
from thinkjson_edge.tui.document_view import DocumentView, _wrap
from thinkjson_edge.tui.result_tree import GLYPHS, ResultTree, _rows
from thinkjson_edge.tui.review import (
    LOW_CONFIDENCE,
    NOT_FOUND,
    SCHEMA_ERROR,
    VALID,
    Review,
    default_save_path,
    get_at,
    set_at,
)
from thinkjson_edge.tui.review_screen import ReviewScreen, review_from_files


def make_review(
    tmp_path: Path, value: Any = None, *, review_below: float = 0.1, **kwargs: Any
) -> Review:
    document = Document(RECEIPT, source=str(tmp_path / "receipt.txt"))
    (tmp_path / "receipt.txt").write_text(RECEIPT, encoding="utf-8")
    return Review.from_report(
        document,
        load_schema(SCHEMA),
        report(value, **kwargs),
        tmp_path / "receipt.json",
        review_below=review_below,
    )


# VALUES (tui_data) from the least confident up.
LEAST_SURE_FIRST = [
    "/items/1/name",
    "/items/1/amount",
    "/items/0/amount",
    "/total",
    "/date",
    "/items/0/name",
    "/company",
]


# -- the review logic ------------------------------------------------------------


def test_statuses_mark_grounded_missing_and_invalid_values(tmp_path: Path) -> None:
    review = make_review(tmp_path)
    assert review.valid
    assert review.status("/company") == VALID
    assert review.spans["/company"].start == 0  # first line of the receipt
    assert review.status("/items/1/name") == NOT_FOUND  # "SUGAR" is not in the text
    assert review.status("/items") == NOT_FOUND  # a branch shows the worst below it
    assert review.status("/total") == VALID


def test_an_edit_is_read_by_the_schema_and_flagged_when_it_breaks_it(tmp_path: Path) -> None:
    review = make_review(tmp_path)
    assert review.set_value("/total", "16.90") == 16.9  # a number field gets a number
    assert review.set_value("/date", "2019") == "2019"  # a string field keeps the text
    assert review.set_value("/date", '"12"') == "12"
    assert review.valid
    assert review.set_value("/total", "sixteen") == "sixteen"
    assert not review.valid
    assert review.status("/total") == SCHEMA_ERROR
    assert "is not of type 'number'" in review.problems_at("/total")[0].message
    assert review.status("") == SCHEMA_ERROR
    assert [e.path for e in review.edits] == ["/total", "/date", "/date", "/total"]
    assert review.edits[0].before == 15.4 and review.edits[0].by == "reviewer"


def test_a_missing_required_value_is_flagged_on_its_object(tmp_path: Path) -> None:
    review = make_review(tmp_path, {"company": "KEDAI RUNCIT AMAN"})
    assert not review.valid
    assert review.status("") == SCHEMA_ERROR
    assert "'total' is a required property" in review.problems_at("")[0].message


def test_save_refuses_an_invalid_object_and_writes_nothing(tmp_path: Path) -> None:
    review = make_review(tmp_path)
    review.set_value("/total", "-3")
    with pytest.raises(ReviewError, match="breaks the schema in 1 place"):
        review.save("alice")
    assert not review.save_path.exists() and not review.record_path.exists()


def test_save_writes_the_object_and_appends_to_the_review_record(tmp_path: Path) -> None:
    review = make_review(tmp_path)
    review.set_value("/items/1/name", "BERAS 5KG")
    path = review.save("alice")
    assert json.loads(path.read_text()) == review.value
    review.set_value("/date", "12/03/2019 10:42")
    review.save("bob")
    record = json.loads(review.record_path.read_text())
    assert review.record_path.name == "receipt.review.json"
    assert [entry["reviewer"] for entry in record["reviews"]] == ["alice", "bob"]
    first = record["reviews"][0]
    assert first["extracted"] == EXTRACTED
    assert first["saved"]["items"][1]["name"] == "BERAS 5KG"
    assert first["edits"] == [
        {"path": "/items/1/name", "before": "SUGAR", "after": "BERAS 5KG", "by": "reviewer"}
    ]
    assert record["schema_sha256"] and record["document"].endswith("receipt.txt")
    assert not list(tmp_path.glob("*.tmp"))


def test_an_unreadable_review_record_is_never_overwritten(tmp_path: Path) -> None:
    review = make_review(tmp_path)
    review.record_path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(OutputWriteError, match="review record cannot be read"):
        review.save("alice")
    assert review.record_path.read_text() == "{ not json"


def test_saving_over_the_document_itself_is_refused(tmp_path: Path) -> None:
    review = make_review(tmp_path)
    review.save_path = tmp_path / "receipt.txt"
    with pytest.raises(ReviewError, match="is the document itself"):
        review.save("alice")
    assert (tmp_path / "receipt.txt").read_text() == RECEIPT


def test_field_schema_keeps_definitions_and_adopting_records_an_edit(tmp_path: Path) -> None:
    review = make_review(tmp_path)
    field = review.field_schema("items")
    assert field["properties"] == {"items": SCHEMA["properties"]["items"]}
    assert field["$defs"] == SCHEMA["$defs"] and field["required"] == []
    assert review.field_schema("total")["required"] == ["total"]
    load_schema(field)  # a usable schema on its own
    with pytest.raises(ReviewError, match="not a property the schema declares"):
        review.field_schema("nope")
    review.adopt_field("items", [{"name": "BERAS 5KG"}])
    assert review.value["items"] == [{"name": "BERAS 5KG"}]
    assert review.edits[-1].by == "model" and review.status("/items") == VALID


def test_attempts_are_summarised_with_the_kept_one_marked(tmp_path: Path) -> None:
    review = make_review(tmp_path, second={**EXTRACTED, "total": -1})
    first, second = review.attempts
    assert (first.number, first.valid, first.kept) == (1, False, False)
    assert first.problems == ["/total: -1 is too small"]
    assert (second.number, second.valid, second.kept) == (2, True, True)


def test_each_value_brings_its_confidence_and_the_unsure_are_marked(tmp_path: Path) -> None:
    review = make_review(tmp_path, values=VALUES)
    company = review.confidence("/company")
    assert company is not None and company.confidence == 0.97 and company.copied
    # A copied value's span is the decoder's, not a search of the document.
    assert review.spans["/company"] == Span(0, 17, "copied")
    total = review.confidence("/total")
    assert total is not None and not total.copied and total.start is None
    assert review.status("/items/1/amount") == LOW_CONFIDENCE  # 0.07 < 0.1
    assert review.status("/items/0/amount") == VALID  # 0.45
    assert review.status("/items/1") == NOT_FOUND  # "SUGAR" is worse than unsure
    assert review.status("/items/0") == VALID
    assert [f.message for f in review.problems_at("/items/1/amount")] == [
        "confidence 0.07 is below 0.1"
    ]
    assert [f.path for f in review.to_check()] == ["/items/1/name", "/items/1/amount"]
    assert review.valid  # being unsure is no schema error

    stricter = make_review(tmp_path, values=VALUES, review_below=0.5)
    assert sorted(f.path for f in stricter.to_check()) == sorted(LEAST_SURE_FIRST[:3])
    off = make_review(tmp_path, values=VALUES, review_below=0)
    assert not off.to_check() and off.status("/items/1/amount") == VALID

    older = make_review(tmp_path)  # a report without values
    assert older.confidence("/company") is None and not older.to_check()
    assert older.spans["/company"].match == "exact"
    assert older.next_to_check() is None


def test_values_are_walked_from_the_least_confident_and_edits_leave_the_walk(
    tmp_path: Path,
) -> None:
    review = make_review(tmp_path, values=VALUES)
    assert [pointer(t.path) for t in review.by_confidence()] == LEAST_SURE_FIRST
    walked, after = [], None
    for _ in range(len(LEAST_SURE_FIRST) + 1):
        trace = review.next_to_check(after)
        assert trace is not None
        after = pointer(trace.path)
        walked.append(after)
    assert walked == [*LEAST_SURE_FIRST, LEAST_SURE_FIRST[0]]  # then round again

    review.set_value("/items/1/amount", "10")
    assert review.edited("/items/1/amount") and review.confidence("/items/1/amount") is None
    assert review.status("/items/1/amount") == VALID  # the reviewer's value is not unsure
    assert not review.edited("/items/1/name")
    # The walk goes on from the edited value's place; a fresh one starts at the least sure.
    assert pointer(review.next_to_check("/items/1/amount").path) == "/items/0/amount"
    assert pointer(review.next_to_check().path) == "/items/1/name"
    assert "/items/1/amount" not in [pointer(t.path) for t in review.by_confidence()]

    # Typing the same text again is still the reviewer's word: edited, and no copied span.
    review.set_value("/company", "KEDAI RUNCIT AMAN")
    assert review.edited("/company") and review.confidence("/company") is None
    assert review.spans["/company"] == Span(0, 17, "exact")
    # Replacing an object edits everything under it.
    review.set_value("/items/0", '{"name": "GULA 1KG"}')
    assert review.edited("/items/0/name") and review.confidence("/items/0/name") is None


def test_a_rerun_field_brings_its_own_confidence(tmp_path: Path) -> None:
    review = make_review(tmp_path, values=VALUES)
    review.set_value("/total", "16.90")
    assert review.edited("/total")
    traces = [
        ValueTrace(("total",), "number", 0.05, copied=False),
        ValueTrace(("company",), "string", 0.5, copied=True, start=0, end=17),  # not adopted
    ]
    review.adopt_field("total", 15.4, traces)
    assert not review.edited("/total")
    assert review.confidence("/total") == traces[0]
    assert review.status("/total") == LOW_CONFIDENCE
    assert review.confidence("/company").confidence == 0.97  # the other fields keep theirs
    assert pointer(review.next_to_check().path) == "/items/1/name"  # 0.04 < 0.05
    review.adopt_field("items", [{"name": "GULA 1KG"}])  # a re-run without traces
    assert review.confidence("/items/0/name") is None and not review.edited("/items/0/name")


def test_a_saved_object_shows_its_changed_values_as_edited(tmp_path: Path) -> None:
    (tmp_path / "receipt.txt").write_text(RECEIPT, encoding="utf-8")
    saved = tmp_path / "receipt.json"
    saved.write_text(json.dumps({**EXTRACTED, "company": "KEDAI AMAN"}), encoding="utf-8")
    schema = load_schema(SCHEMA)
    review = review_from_files(tmp_path / "receipt.txt", schema, report(values=VALUES), saved)
    assert review.edited("/company") and review.confidence("/company") is None
    assert not review.edited("/date") and review.confidence("/date").confidence == 0.88
    no_report = review_from_files(tmp_path / "receipt.txt", schema, None, saved)
    assert not no_report.edited("/company") and no_report.confidence("/company") is None


def test_tree_labels_show_confidence_the_unsure_mark_and_edits(tmp_path: Path) -> None:
    review = make_review(tmp_path, values=VALUES)
    review.set_value("/total", "16.90")
    labels = {path: label for path, label, _ in _rows(review.value, "", review)}
    assert labels["/company"].plain == '✓ company: "KEDAI RUNCIT AMAN"  0.97'
    assert labels["/items/0/amount"].plain == "✓ amount: 5.4  0.45"
    assert labels["/items/1/amount"].plain == "! amount: 10.0  0.07"
    assert labels["/total"].plain == "✓ total: 16.9  edited"
    assert labels["/items/1"].plain == "? 1"  # a branch: the worst mark below, no number
    unsure = labels["/items/1/amount"]
    assert GLYPHS[LOW_CONFIDENCE][1] in str(unsure.get_style_at_offset(Console(), len(unsure) - 1))
    sure = labels["/items/0/amount"]
    assert "dim" in str(sure.get_style_at_offset(Console(), len(sure) - 1))
    older = make_review(tmp_path)
    plain = {path: label.plain for path, label, _ in _rows(older.value, "", older)}
    assert plain["/company"] == '✓ company: "KEDAI RUNCIT AMAN"'


def test_the_help_legend_explains_the_marks() -> None:
    console = Console(width=120, record=True)
    console.print(_legend())
    rows = {line.split(maxsplit=1)[0]: line for line in console.export_text().splitlines() if line}
    glyph, _ = GLYPHS[LOW_CONFIDENCE]
    assert "the model was unsure of it" in rows[glyph] and "--review-below" in rows[glyph]
    assert '"edited" once you changed it' in rows["0.87"]


def test_json_pointers_round_trip_odd_keys() -> None:
    path = pointer(["a/b", "c~d", 0])
    assert path == "/a~1b/c~0d/0"
    assert pointer_parts(path) == ["a/b", "c~d", "0"]
    value = {"a/b": {"c~d": [1, 2]}}
    assert get_at(value, path) == 1
    assert set_at(value, path, 9) == {"a/b": {"c~d": [9, 2]}}
    assert value["a/b"]["c~d"][0] == 1  # set_at copies
    assert get_at(value, "/missing", None) is None
    assert default_save_path(Path("/x/report.pdf")) == Path("/x/report.extracted.json")


def test_wrapping_keeps_every_offset() -> None:
    text = "alpha beta gamma delta\n\nshort\fpage two " + "x" * 30
    rows = list(_wrap(text, 12))
    assert [text[a:b] for a, b in rows] == [
        "alpha beta ",
        "gamma delta",
        "",
        "short",
        "page two ",
        "x" * 12,
        "x" * 12,
        "x" * 6,
    ]
    assert all(b - a <= 12 for a, b in rows)


# -- the real app on the real model ----------------------------------------------


async def wait_until(pilot: Any, condition: Callable[[], bool], seconds: float = 180) -> None:
    waited = 0.0
    while not condition():
        assert waited < seconds, "timed out waiting for the interface"
        await pilot.pause(0.2)
        waited += 0.2


def review_screen(app: ReviewApp) -> ReviewScreen:
    screen = next(s for s in app.screen_stack if isinstance(s, ReviewScreen))
    return screen


def notices(app: ReviewApp) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


def fast_app(folder: Path, **kwargs: Any) -> ReviewApp:
    options = ExtractOptions(think=False, self_correct=False)
    return ReviewApp(folder, schema=load_schema(SCHEMA), device="cpu", options=options, **kwargs)


async def select_path(pilot: Any, path: str) -> None:
    """Put the result tree's cursor on ``path`` with the arrow keys."""
    tree = pilot.app.screen.query_one(ResultTree)
    tree.focus()
    await pilot.press("home")
    for _ in range(64):
        if tree.cursor_node is not None and tree.cursor_node.data == path:
            return
        await pilot.press("down")
    raise AssertionError(f"{path} is not in the result tree")


async def test_c_walks_from_the_least_confident_value_and_skips_edited_ones(
    tmp_path: Path,
) -> None:
    review = make_review(tmp_path, values=VALUES)
    app = FixedReviewApp(review)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        screen = review_screen(app)
        tree = screen.query_one(ResultTree)
        screen.query_one(DocumentView).focus()  # c works from the document pane too

        def selected() -> str | None:
            return tree.cursor_node.data if tree.cursor_node is not None else None

        await pilot.press("c")
        await pilot.pause()
        assert selected() == "/items/1/name" and tree.has_focus
        assert "confidence 0.04 (1 of 7, least sure first)" in str(
            screen.query_one("#detail").render()
        )
        await pilot.press("c")
        await pilot.pause()
        assert selected() == "/items/1/amount"
        detail = str(screen.query_one("#detail").render())
        assert "! low confidence" in detail and "confidence 0.07 is below 0.1" in detail

        # Edited: out of the walk, shown as edited; c goes on to the next one up.
        await pilot.press("e", "backspace", "backspace", "backspace", "backspace", *"12", "enter")
        await pilot.pause()
        assert review.value["items"][1]["amount"] == 12
        assert str(tree.cursor_node.label).endswith("edited")
        assert "edited by the reviewer" in str(screen.query_one("#detail").render())
        await pilot.press("c")
        await pilot.pause()
        assert selected() == "/items/0/amount"

        # Moved away by hand: c starts from the least confident again, even when closed.
        await pilot.press("home")
        await select_path(pilot, "/items")
        await pilot.press("space")  # collapse the items
        await pilot.pause()
        assert not tree.cursor_node.is_expanded
        await pilot.press("c")
        await pilot.pause()
        assert selected() == "/items/1/name"

        commands = [c.title for c in app.get_system_commands(screen)]
        assert "Go to the least confident value" in commands


async def test_c_says_so_when_nothing_is_left_to_check(tmp_path: Path) -> None:
    app = FixedReviewApp(make_review(tmp_path))  # a report without values
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        tree = review_screen(app).query_one(ResultTree)
        before = tree.cursor_node.data if tree.cursor_node is not None else None
        await pilot.press("c")
        await pilot.pause()
        assert "No value the model wrote is left unedited" in notices(app)
        assert (tree.cursor_node.data if tree.cursor_node is not None else None) == before


@pytest.mark.model
async def test_c_goes_to_the_value_the_model_was_least_sure_of(tmp_path: Path) -> None:
    document = tmp_path / "receipt.txt"
    document.write_text(RECEIPT, encoding="utf-8")
    app = fast_app(document)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = review_screen(app)
        await wait_until(pilot, lambda: screen.review is not None)
        assert screen.worker is not None and screen.worker.result is not None
        values = screen.worker.result.chosen.values
        assert len(values) >= 3
        least_sure_first = sorted(values, key=lambda v: v.confidence)
        tree = screen.query_one(ResultTree)

        await pilot.press("c")
        await pilot.pause()
        least = min(values, key=lambda v: v.confidence)
        assert tree.cursor_node is not None and tree.cursor_node.data == pointer(least.path)
        assert f"{least.confidence:.2f}" in str(tree.cursor_node.label)
        assert f"confidence {least.confidence:.2f}" in str(screen.query_one("#detail").render())

        await pilot.press("c")
        await pilot.pause()
        assert tree.cursor_node.data == pointer(least_sure_first[1].path)


@pytest.mark.model
async def test_open_run_edit_into_a_violation_and_save(tmp_path: Path) -> None:
    (tmp_path / "receipt.txt").write_text(RECEIPT, encoding="utf-8")
    app = fast_app(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        # The app starts on the file picker over the folder; type the document's name.
        await pilot.pause()
        await pilot.click("#typed-path")
        await pilot.press(*"receipt.txt", "enter")
        screen = review_screen(app)
        await wait_until(pilot, lambda: screen.document is not None)
        assert "KEDAI RUNCIT AMAN" in screen.query_one(DocumentView).text

        await pilot.press("r")
        await wait_until(pilot, lambda: screen.review is not None)
        review = screen.review
        assert review is not None and review.valid, review.findings
        assert "✓ valid" in str(screen.query_one("#status").render())
        # The live output saw the JSON as it was written.
        assert '"total"' in screen.live_text.plain

        await select_path(pilot, "/total")
        view = screen.query_one(DocumentView)
        await pilot.press("e")
        await pilot.press(*"minus", "enter")
        await pilot.pause()
        assert review.value["total"] == "minus"
        assert review.status("/total") == SCHEMA_ERROR
        assert "✗" in str(screen.query_one(ResultTree).cursor_node.label)
        assert "is not of type 'number'" in str(screen.query_one("#detail").render())
        assert "schema error" in str(screen.query_one("#status").render())

        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not (tmp_path / "receipt.extracted.json").exists()
        assert "breaks the schema" in notices(app)

        await pilot.press("e", *"15.40", "enter")
        await pilot.pause()
        assert review.valid and review.value["total"] == 15.4
        await select_path(pilot, "/company")
        assert view.selected is not None  # the company's span is highlighted...
        assert view.text[view.selected.start : view.selected.end] == review.value["company"]

        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = json.loads((tmp_path / "receipt.extracted.json").read_text())
        assert saved == review.value
        record = json.loads((tmp_path / "receipt.extracted.review.json").read_text())
        assert [e["after"] for e in record["reviews"][0]["edits"]] == ["minus", 15.4]


@pytest.mark.model
async def test_a_running_extraction_is_cancelled_and_the_model_still_works(
    tmp_path: Path,
) -> None:
    document = tmp_path / "receipt.txt"
    document.write_text(RECEIPT, encoding="utf-8")
    options = ExtractOptions(think=True, max_think_tokens=2048, self_correct=False)
    app = ReviewApp(
        document, schema=load_schema(SCHEMA), device="cpu", options=options, run_on_open=True
    )
    async with app.run_test(size=(140, 40)) as pilot:
        screen = review_screen(app)
        await wait_until(pilot, lambda: screen.live.written > 3)  # it is reasoning now
        assert screen.query_one("TabbedContent").active == "live-tab"
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen._extracting())
        assert screen.review is None
        assert "cancelled" in notices(app)
        # The interface answered while the model ran, and the model is usable again.
        screen.host.options = ExtractOptions(think=False, self_correct=False)
        with screen.host.lock:
            screen.host.extractor().options = screen.host.options
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.review is not None)
        assert screen.review is not None and screen.review.valid


@pytest.mark.model
async def test_rerunning_one_field_replaces_only_that_field(tmp_path: Path) -> None:
    document = tmp_path / "receipt.txt"
    document.write_text(RECEIPT, encoding="utf-8")
    app = fast_app(document)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = review_screen(app)
        await wait_until(pilot, lambda: screen.review is not None)
        review = screen.review
        assert review is not None
        before = dict(review.value)
        await select_path(pilot, "/company")
        await pilot.press("e", *"WRONG", "enter")
        await pilot.pause()
        await pilot.press("f")
        await wait_until(pilot, lambda: review.edits[-1].by == "model")
        # Extracted again under a schema of that field alone (another prompt, so the model
        # may choose another span): the edit is replaced by a value copied from the receipt.
        company = review.value["company"]
        assert company != "WRONG"
        assert " ".join(company.split()) in " ".join(RECEIPT.split())
        assert {k: v for k, v in review.value.items() if k != "company"} == {
            k: v for k, v in before.items() if k != "company"
        }


@pytest.mark.model
async def test_a_batch_folder_opens_a_file_into_a_review_and_saves_it_back(
    tmp_path: Path,
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt").write_text(RECEIPT, encoding="utf-8")
    (inputs / "b.txt").write_text(RECEIPT.replace("15.40", "16.40"), encoding="utf-8")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    out = tmp_path / "out"
    fast = ["--no-think", "--no-self-correct", "--device", "cpu", "--quiet"]
    run = CliRunner().invoke(
        main, ["batch", str(inputs), "--schema", str(schema), "--out", str(out), *fast]
    )
    assert run.exit_code == 0, run.output

    app = ReviewApp(out, device="cpu")
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, BatchScreen)
        await pilot.press("down", "enter")  # the second file, b.txt
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen))
        screen = app.screen
        assert isinstance(screen, ReviewScreen) and screen.review is not None
        review = screen.review
        assert review.document.source.endswith("b.txt")
        assert review.value == json.loads((out / "b.txt.json").read_text())
        assert review.attempts and review.attempts[0].kept  # from the batch's report
        await select_path(pilot, "/company")
        await pilot.press("e", *"KEDAI AMAN", "enter", "ctrl+s")
        await pilot.pause()
        assert json.loads((out / "b.txt.json").read_text())["company"] == "KEDAI AMAN"
        assert (out / "b.txt.review.json").is_file()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BatchScreen)


def test_the_command_checks_its_arguments_before_it_needs_a_terminal(tmp_path: Path) -> None:
    document = tmp_path / "receipt.txt"
    document.write_text(RECEIPT, encoding="utf-8")
    bad_schema = tmp_path / "bad.json"
    bad_schema.write_text('{"type": "nonsense"}', encoding="utf-8")
    runner = CliRunner()
    refused = runner.invoke(main, ["tui", str(document), "--schema", str(bad_schema)])
    assert refused.exit_code == EXIT_SCHEMA
    assert "nonsense" in refused.output
    missing = runner.invoke(main, ["tui", str(tmp_path / "nowhere.txt")])
    assert missing.exit_code == EXIT_USAGE
    no_terminal = runner.invoke(main, ["tui", str(document)])  # CliRunner is not a terminal
    assert no_terminal.exit_code == EXIT_USAGE
    assert "needs an interactive terminal" in no_terminal.output
