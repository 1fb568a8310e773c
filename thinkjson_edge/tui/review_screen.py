"""The review screen: the document on the left, the result, attempts and live output on the right.

Extraction runs in a thread worker (``_extract``); the screen only reads the live output on
a timer and shows the result when the worker ends, so the interface never waits for the
model. Esc cancels a run: the worker's next token raises ``Cancelled``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane, Tree
from textual.worker import Worker, WorkerState, get_current_worker

from thinkjson_edge.errors import Cancelled, ReviewError, ThinkJsonError
from thinkjson_edge.pipeline.documents import Document, read_document
from thinkjson_edge.pipeline.extractor import DEFAULT_REVIEW_BELOW
from thinkjson_edge.pipeline.findings import NOT_GROUNDED, REVIEW
from thinkjson_edge.pipeline.result import ExtractionResult
from thinkjson_edge.schema import Schema, load_schema, pointer, pointer_parts
from thinkjson_edge.tui.dialogs import EditValue, ModelPicker, PathPicker
from thinkjson_edge.tui.document_view import DocumentView
from thinkjson_edge.tui.model_host import LiveOutput, ModelHost
from thinkjson_edge.tui.paths import shown_path
from thinkjson_edge.tui.result_tree import GLYPHS, ResultTree
from thinkjson_edge.tui.review import (
    LOW_CONFIDENCE,
    NOT_FOUND,
    SCHEMA_ERROR,
    Review,
    default_save_path,
    page_and_box,
)

LIVE_REFRESH_SECONDS = 0.1
# A finding's colour in the detail pane: its status's in the tree.
_FINDING_COLOURS = {NOT_GROUNDED: GLYPHS[NOT_FOUND][1], REVIEW: GLYPHS[LOW_CONFIDENCE][1]}


class ReviewScreen(Screen[None]):
    """Review one document's extraction: run it, check it field by field, edit, save."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open_document", "Open", tooltip="Open a document (file picker)"),
        Binding("s", "choose_schema", "Schema", tooltip="Choose the JSON Schema"),
        Binding("m", "choose_model", "Model", tooltip="Choose among the installed models"),
        Binding("r", "run", "Run", tooltip="Extract from the whole document"),
        Binding("f", "rerun_field", "Re-run field", tooltip="Extract the selected top field again"),
        Binding("e", "edit", "Edit", tooltip="Edit the selected value (checked at once)"),
        Binding(
            "c",
            "next_to_check",
            "Least sure",
            tooltip="Go to the least confident value not edited; again: the next",
        ),
        Binding(
            "ctrl+s",
            "save",
            "Save",
            tooltip="Save (atomic) and add to the review record; refused if invalid",
        ),
        Binding(
            "escape",
            "cancel_or_back",
            "Cancel / back",
            tooltip="Cancel the running extraction, or go back to the batch view",
        ),
        Binding("d", "focus_document", "Document", show=False, tooltip="Focus the document"),
        Binding("t", "focus_result", "Result", show=False, tooltip="Focus the result tree"),
    ]

    DEFAULT_CSS = """
    ReviewScreen #panes { height: 1fr; }
    ReviewScreen #left { width: 1fr; border: round $primary; }
    ReviewScreen #right { width: 1fr; }
    ReviewScreen #status { height: auto; padding: 0 1; background: $boost; }
    ReviewScreen #tree { height: 2fr; }
    ReviewScreen #detail { height: 1fr; border-top: solid $primary; padding: 0 1; }
    ReviewScreen .attempt { width: 1fr; padding: 0 1; }
    ReviewScreen #live-scroll { height: 1fr; padding: 0 1; }
    """

    def __init__(
        self,
        host: ModelHost,
        *,
        document: Path | None = None,
        schema: Schema | None = None,
        review: Review | None = None,
        save_path: Path | None = None,
        run_on_open: bool = False,
        browse_from: Path | None = None,
        on_saved: Callable[[Path], None] | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.on_saved = on_saved  # told after each save (the batch view records the review)
        self.browse_from = browse_from or Path.cwd()  # where the pickers start
        self.document_path = Path(review.document.source) if review else document
        self.document: Document | None = review.document if review else None
        self.schema = review.schema if review else schema
        self.review = review
        self.save_path = save_path
        self.run_on_open = run_on_open
        self.live = LiveOutput()
        self.worker: Worker[ExtractionResult] | None = None
        self._live_attempt = 0
        self.live_text = Text()  # everything the current run wrote, as the tab shows it
        self._discard_confirmed = False
        self._checked: str | None = None  # where the last ``c`` went

    # -- layout ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            with Vertical(id="left"):
                yield DocumentView(id="document")
            with Vertical(id="right"):
                yield Static(id="status")
                with TabbedContent(initial="result-tab", id="tabs"):
                    with TabPane("Result", id="result-tab"):
                        yield ResultTree(id="tree")
                        yield Static(id="detail")
                    with TabPane("Attempts", id="attempts-tab"), Horizontal():
                        yield VerticalScroll(Static(id="attempt-1"), classes="attempt")
                        yield VerticalScroll(Static(id="attempt-2"), classes="attempt")
                    with TabPane("Live output", id="live-tab"):
                        yield VerticalScroll(Static(id="live"), id="live-scroll")
                    with TabPane("Schema", id="schema-tab"):
                        yield VerticalScroll(Static(id="schema"))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#left").border_title = "document"
        self.set_interval(LIVE_REFRESH_SECONDS, self._show_live_output)
        if self.document_path is not None and self.document is None:
            self.load_document(self.document_path)
        self._show_document()
        self._show_schema()
        self._show_review()
        if self.run_on_open and self.document is not None and self.schema is not None:
            self.action_run()

    # -- loading ---------------------------------------------------------------

    def load_document(self, path: Path) -> bool:
        """Read a document into the left pane; a new document starts a new review."""
        try:
            document = read_document(path)
        except ThinkJsonError as error:
            self.notify(str(error), title="Cannot open the document", severity="error")
            return False
        self.document_path, self.document, self.review = path, document, None
        self._show_document()
        self._show_review()
        return True

    def load_schema(self, path: Path) -> bool:
        try:
            schema = load_schema(path)
        except ThinkJsonError as error:
            self.notify(str(error), title="Cannot use the schema", severity="error")
            return False
        self.schema = schema
        if self.review is not None:  # the same object, judged by the new schema
            self.review.schema = schema
            self.review.revalidate()
        self._show_schema()
        self._show_review()
        return True

    # -- actions ---------------------------------------------------------------

    def action_open_document(self) -> None:
        root = self.document_path.parent if self.document_path else self.browse_from
        self.app.push_screen(PathPicker("Open a document", root), self._opened_document)

    def _opened_document(self, path: Path | None) -> None:
        if path is not None:
            self.load_document(path)

    def action_choose_schema(self) -> None:
        root = Path(self.schema.source).parent if self._schema_has_file() else self.browse_from
        picker = PathPicker("Choose a JSON Schema", root, json_only=True)
        self.app.push_screen(picker, self._chosen_schema)

    def _chosen_schema(self, path: Path | None) -> None:
        if path is not None:
            self.load_schema(path)

    def action_choose_model(self) -> None:
        if self._extracting():
            self.notify("An extraction is running; Esc cancels it first", severity="warning")
            return
        picker = ModelPicker(self.host.choices(), self.host.spec or "")
        self.app.push_screen(picker, self._chosen_model)

    def _chosen_model(self, spec: str | None) -> None:
        if spec is None or spec == self.host.spec:
            return
        with self.host.lock:
            self.host.choose(spec)
        self.notify(f"Model {spec}: loaded on the next run")
        self._show_status()

    def action_run(self) -> None:
        """Extract the whole document again (unsaved edits are discarded on a second press)."""
        if not self._ready_to_run():
            return
        unsaved = self.review is not None and self.review.edits and not self.review.saved
        if unsaved and not self._discard_confirmed:
            assert self.review is not None
            self._discard_confirmed = True
            self.notify(
                f"{len(self.review.edits)} unsaved edit(s) would be lost: press r again to "
                "run anyway, or Ctrl+S to save them first",
                severity="warning",
            )
            return
        self._discard_confirmed = False
        self._start(self.schema, field=None)

    def action_rerun_field(self) -> None:
        """Extract the selected top-level field again, and put it into the object."""
        if not self._ready_to_run() or self.review is None:
            if self.review is None:
                self.notify("Run the extraction first (r)", severity="warning")
            return
        path = self._selected_path()
        if not path:
            self.notify("Select a field in the result first", severity="warning")
            return
        key = pointer_parts(path)[0]
        try:
            schema = load_schema(self.review.field_schema(key))
        except ThinkJsonError as error:
            self.notify(str(error), severity="error")
            return
        self._start(schema, field=key)

    def action_edit(self) -> None:
        if self.review is None:
            self.notify("Nothing to edit yet: run the extraction first (r)", severity="warning")
            return
        path = self._selected_path()
        if path is None:
            self.notify("Select a field in the result first", severity="warning")
            return
        value = self.review.value_at(path)
        if isinstance(value, dict | list) and value:
            self.notify("Select one value inside this object or array", severity="warning")
            return
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        hint = (
            "Enter applies, Esc cancels. JSON (12.5, true, null, [..]) when the schema "
            'takes it, else text; "quoted" is always text.'
        )
        self.app.push_screen(EditValue(path, shown, hint), partial(self._edited, path))

    def _edited(self, path: str, raw: str | None) -> None:
        if raw is None or self.review is None:
            return
        self.review.set_value(path, raw)
        self._show_review(path)
        problems = [f.message for f in self.review.problems_at(path)]
        if self.review.status(path) == SCHEMA_ERROR:
            self.notify("; ".join(problems) or "breaks the schema", severity="error")

    def action_next_to_check(self) -> None:
        """Select the least confident value not edited; again, the next least confident."""
        if self.review is None:
            self.notify("Nothing to check yet: run the extraction first (r)", severity="warning")
            return
        tree = self.query_one(ResultTree)
        # Go on from the last jump only while the cursor is still there; else start over.
        after = self._checked if self._selected_path() == self._checked else None
        trace = self.review.next_to_check(after)
        if trace is None:
            self.notify("No value the model wrote is left unedited", severity="warning")
            return
        path = pointer(trace.path)
        if after is not None and trace == self.review.by_confidence()[0]:
            self.notify("Back to the least confident value")
        self._checked = path
        self.query_one(TabbedContent).active = "result-tab"
        tree.focus()
        tree.select_path(path)

    def action_save(self) -> None:
        if self.review is None:
            self.notify("Nothing to save yet", severity="warning")
            return
        try:
            path = self.review.save()
        except ThinkJsonError as error:
            self.notify(str(error), title="Not saved", severity="error")
            return
        try:
            if self.on_saved is not None:
                self.on_saved(path)
        except ThinkJsonError as error:
            self.notify(str(error), title="Saved, but not recorded", severity="warning")
        self.notify(f"Saved {path}\nReview record: {self.review.record_path}", title="Saved")
        self._show_status()

    def action_cancel_or_back(self) -> None:
        if self._extracting() and self.worker is not None:
            self.worker.cancel()
            self.notify("Cancelling the extraction…")
        elif len(self.app.screen_stack) > 1:  # opened from the batch view: go back to it
            self.dismiss()

    def action_focus_document(self) -> None:
        self.query_one(DocumentView).focus()

    def action_focus_result(self) -> None:
        self.query_one(TabbedContent).active = "result-tab"
        self.query_one(ResultTree).focus()

    # -- extraction in a worker thread ----------------------------------------

    def _ready_to_run(self) -> bool:
        if self._extracting():
            self.notify("An extraction is running; Esc cancels it", severity="warning")
            return False
        if self.document is None:
            self.notify("Open a document first (o)", severity="warning")
            return False
        if self.schema is None:
            self.notify("Choose a schema first (s)", severity="warning")
            return False
        return True

    def _start(self, schema: Schema | None, *, field: str | None) -> None:
        assert self.document is not None and schema is not None
        self.live = LiveOutput()
        self._live_attempt = 0
        self.live_text = Text(f"── {'field ' + field if field else 'whole document'} ──")
        self.query_one("#live", Static).update(self.live_text)
        self.query_one(TabbedContent).active = "live-tab"
        self.worker = self.run_worker(
            partial(self._extract, self.document, schema, self.live),
            name=field or "",
            group="extraction",
            thread=True,
            exit_on_error=False,
        )
        self._show_status()

    def _extract(self, document: Document, schema: Schema, live: LiveOutput) -> ExtractionResult:
        """Runs in the worker thread: load the model if needed, then extract."""
        worker = get_current_worker()

        def on_text(attempt: int, text: str, reasoning: bool) -> None:
            if worker.is_cancelled:
                raise Cancelled("cancelled")
            live.add(attempt, text, reasoning)

        with self.host.lock:
            if worker.is_cancelled:
                raise Cancelled("cancelled")
            return self.host.extractor().extract(document, schema, on_text=on_text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker is not self.worker:
            return
        if event.state == WorkerState.SUCCESS and worker.result is not None:
            self._finished(worker.result, field=worker.name or None)
        elif event.state == WorkerState.ERROR:
            error = worker.error
            if isinstance(error, Cancelled):
                self.notify("Extraction cancelled")
            elif isinstance(error, ThinkJsonError):
                self.notify(str(error), title="Extraction failed", severity="error")
            else:
                self.notify(f"{type(error).__name__}: {error}", title="Bug", severity="error")
        elif event.state == WorkerState.CANCELLED:
            self.notify("Extraction cancelled")
        self._show_status()

    def _finished(self, result: ExtractionResult, *, field: str | None) -> None:
        self._show_live_output()
        assert self.document is not None and self.schema is not None
        if field is not None and self.review is not None:
            value = result.value or {}
            if field not in value:
                self.notify(f"The model found no value for {field}; nothing changed")
                return
            self.review.adopt_field(field, value[field], result.chosen.values)
            self.notify(f"{field} extracted again: {json.dumps(value[field])[:60]}")
        else:
            self.review = Review.from_report(
                self.document,
                self.schema,
                result.to_dict(),
                self._save_target(),
                review_below=self.host.options.review_below,
            )
        self.query_one(TabbedContent).active = "result-tab"
        self._show_review()
        self.query_one(ResultTree).focus()

    def _extracting(self) -> bool:
        return self.worker is not None and self.worker.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )

    # -- drawing ---------------------------------------------------------------

    def _show_live_output(self) -> None:
        pieces = self.live.take()
        if not pieces:
            if self._extracting():
                self._show_status()
            return
        for piece in pieces:
            if piece.attempt != self._live_attempt:
                self._live_attempt = piece.attempt
                self.live_text.append(f"\n── attempt {piece.attempt} ──\n", style="bold")
            self.live_text.append(piece.text, style="italic dim" if piece.reasoning else "")
        self.query_one("#live", Static).update(self.live_text)
        self.query_one("#live-scroll", VerticalScroll).scroll_end(animate=False)
        self._show_status()

    def _show_document(self) -> None:
        view = self.query_one(DocumentView)
        if self.document is None:
            view.set_text("No document open.\n\nPress o to open one, s to choose a schema.")
            self.sub_title = ""
            return
        view.set_text(self.document.text)
        self.sub_title = shown_path(Path(self.document.source))

    def _show_schema(self) -> None:
        shown = (
            Syntax(json.dumps(self.schema.schema, indent=2, ensure_ascii=False), "json")
            if self.schema is not None
            else Text("No schema chosen: press s.", style="dim")
        )
        self.query_one("#schema", Static).update(shown)

    def _show_review(self, path: str | None = None) -> None:
        """Draw the review; the detail pane shows ``path`` (default: the tree's cursor)."""
        review = self.review
        self.query_one(ResultTree).show(review)
        view = self.query_one(DocumentView)
        view.set_spans(review.spans.values() if review else [])
        self._show_attempts()
        self._show_detail(path if path is not None else self._selected_path())
        self._show_status()

    def _show_attempts(self) -> None:
        attempts = self.review.attempts if self.review else []
        for number in (1, 2):
            attempt = next((a for a in attempts if a.number == number), None)
            target = self.query_one(f"#attempt-{number}", Static)
            if attempt is None:
                note = "Not run: attempt 1 had no findings, or no extraction yet."
                target.update(Text(f"Attempt {number}\n\n{note}", style="dim"))
                continue
            kept = "kept" if attempt.kept else "not kept"
            mark = "✓ valid" if attempt.valid else "✗ invalid"
            head = Text(f"Attempt {number} ({kept}), {mark}\n", style="bold")
            body = json.dumps(attempt.value, indent=2, ensure_ascii=False)
            problems = "\n".join(f"• {p}" for p in attempt.problems) or "no findings"
            target.update(Text.assemble(head, body, "\n\n", (problems, "italic")))

    def _show_detail(self, path: str | None) -> None:
        detail = self.query_one("#detail", Static)
        review = self.review
        view = self.query_one(DocumentView)
        if review is None or path is None:
            detail.update(Text("Select a field to see where it came from.", style="dim"))
            view.select(None)
            return
        status = review.status(path)
        glyph, colour = GLYPHS[status]
        value = review.value_at(path)
        lines = Text.assemble(
            (f"{glyph} {status}", f"bold {colour}"), "  ", (path or "(the whole object)", "bold")
        )
        if not isinstance(value, dict | list):
            lines.append(f"\nvalue: {json.dumps(value, ensure_ascii=False)}")
            lines.append_text(self._confidence_lines(review, path))
        span = review.spans.get(path)
        if span is not None and span.match != "copied":  # a copied span: said above
            lines.append(f"\nfound on line {self._line_of(span.start)} ({span.match} match)")
        if place := page_and_box(review.document.layout, span):  # a PDF or a scan
            lines.append(f"\n{place}")
        for finding in review.problems_at(path):
            colour = _FINDING_COLOURS.get(finding.kind, "red")
            lines.append(f"\n• {finding.message}", style=colour)
        detail.update(lines)
        view.select(span)

    def _confidence_lines(self, review: Review, path: str) -> Text:
        """How sure the model was of the value at ``path``, or that the reviewer edited it."""
        if review.edited(path):
            return Text("\nedited by the reviewer: no model confidence", style="italic")
        trace = review.confidence(path)
        if trace is None:
            return Text()
        order = review.by_confidence()
        rank = next(n for n, t in enumerate(order, 1) if t == trace)
        low = trace.confidence < review.review_below
        _, colour = GLYPHS[LOW_CONFIDENCE]
        if trace.copied and trace.start is not None and trace.end is not None:
            origin = (
                f"copied from line {self._line_of(trace.start)}, "
                f"characters {trace.start}-{trace.end}"
            )
        else:
            origin = "generated by the model, not copied"
        return Text.assemble(
            "\nconfidence ",
            (f"{trace.confidence:.2f}", f"bold {colour}" if low else "bold"),
            f" ({rank} of {len(order)}, least sure first)\n",
            origin,
        )

    def _line_of(self, offset: int) -> int:
        return self.document.text.count("\n", 0, offset) + 1 if self.document else 0

    def _show_status(self) -> None:
        parts = [
            f"schema: {Path(self.schema.source).name if self.schema else '(none: press s)'}",
            f"model: {self.host.name}{'' if self.host.loaded else ' (not loaded)'}",
        ]
        if self._extracting():
            phase = "loading the model" if not self.host.loaded else "extracting"
            parts.append(f"{phase}… {self.live.written:,} characters (Esc cancels)")
        elif self.review is not None:
            parts.append(self._verdict(self.review))
        self.query_one("#status", Static).update("  │  ".join(parts))

    def _verdict(self, review: Review) -> str:
        errors = len(review.schema_errors())
        missing = sum(f.kind == NOT_GROUNDED for f in review.findings)
        verdict = "✓ valid" if review.valid else f"✗ {errors} schema error(s)"
        if missing:
            verdict += f", ? {missing} not grounded"
        if unsure := len(review.to_check()):
            verdict += f", ! {unsure} unsure"
        if review.edits and not review.saved:
            verdict += f", {len(review.edits)} unsaved edit(s)"
        elif review.saved:
            verdict += f", saved to {review.save_path.name}"
        return verdict

    # -- events ----------------------------------------------------------------

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        self._show_detail(event.node.data)

    def _selected_path(self) -> str | None:
        tree = self.query_one(ResultTree)
        node = tree.cursor_node
        return node.data if node is not None and self.review is not None else None

    def _save_target(self) -> Path:
        if self.save_path is not None:
            return self.save_path
        assert self.document_path is not None
        return default_save_path(self.document_path)

    def _schema_has_file(self) -> bool:
        return self.schema is not None and Path(self.schema.source).is_file()


def review_from_files(
    document: Path,
    schema: Schema,
    report: dict[str, Any] | None,
    result: Path,
    *,
    review_below: float = DEFAULT_REVIEW_BELOW,
) -> Review:
    """A review of a batch's output: its report if there is one, the saved object if any.

    The object on disk wins over the report's: it may have been reviewed and saved since
    (its values that differ from the report's show as edited, without confidence).
    """
    text = read_document(document)
    review = Review.from_report(
        text, schema, report or {"attempts": []}, result, review_below=review_below
    )
    if result.is_file():
        try:
            review.value = json.loads(result.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReviewError(f"{result}: the saved result cannot be read ({exc})") from exc
        review.revalidate()
    return review
