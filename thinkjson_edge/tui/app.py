"""``ReviewApp``: the application behind ``thinkjson-edge tui``.

What it opens on depends on its target: a batch output folder opens the batch view, a
document opens the review screen (and runs it when a schema is given too), any other
folder opens the review screen with the file picker over that folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from thinkjson_edge.batch.layout import DATABASE_NAME
from thinkjson_edge.errors import ThinkJsonError
from thinkjson_edge.pipeline.extractor import ExtractOptions
from thinkjson_edge.schema import Schema
from thinkjson_edge.tui.batch_folder import BatchFolder
from thinkjson_edge.tui.batch_screen import BatchScreen
from thinkjson_edge.tui.dialogs import HelpScreen
from thinkjson_edge.tui.model_host import ModelHost
from thinkjson_edge.tui.review_screen import ReviewScreen, review_from_files

DARK_THEME = "textual-dark"
LIGHT_THEME = "textual-light"


class ReviewApp(App[None]):
    """Review extractions beside their documents, and watch batches."""

    TITLE = "thinkjson-edge"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", tooltip="This help"),
        Binding("ctrl+t", "toggle_theme", "Dark/light", tooltip="Switch dark and light themes"),
        Binding("b", "batch_view", "Batch view", show=False, tooltip="Back to the batch view"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(
        self,
        target: Path | None = None,
        *,
        schema: Schema | None = None,
        model: str | None = None,
        device: str = "auto",
        options: ExtractOptions | None = None,
        save_path: Path | None = None,
        run_on_open: bool = True,
    ) -> None:
        super().__init__()
        self.target = target
        self.schema = schema
        self.save_path = save_path
        self.run_on_open = run_on_open
        self.host = ModelHost(model, device, options or ExtractOptions())
        self.batch: BatchFolder | None = None
        self._startup_error = ""

    def get_default_screen(self) -> Screen:
        """The screen at the bottom of the stack: the batch view, or the review screen."""
        target = self.target
        if target is not None and is_batch_folder(target):
            try:
                self.batch = BatchFolder.open(target)
                return BatchScreen(self.batch)
            except ThinkJsonError as error:
                self._startup_error = str(error)
        document = target if target is not None and target.is_file() else None
        return self._review_screen(document)

    def on_mount(self) -> None:
        self.theme = DARK_THEME
        if self._startup_error:
            self.notify(self._startup_error, title="Not a batch folder", severity="error")
        screen = self.screen
        if isinstance(screen, ReviewScreen) and screen.document_path is None:
            screen.action_open_document()  # a folder, or nothing: start by picking a document

    def _review_screen(self, document: Path | None) -> ReviewScreen:
        folder = self.target if self.target is not None and self.target.is_dir() else None
        return ReviewScreen(
            self.host,
            document=document,
            browse_from=folder,
            schema=self.schema,
            save_path=self.save_path,
            run_on_open=self.run_on_open and document is not None,
        )

    def on_unmount(self) -> None:
        with self.host.lock:
            self.host.close()

    # -- the batch view opens a file into a review -----------------------------

    def on_batch_screen_open_file(self, message: BatchScreen.OpenFile) -> None:
        folder, rel = message.folder, message.rel
        report = None
        report_path = folder.report_path(rel)
        try:
            if report_path.is_file():
                report = json.loads(report_path.read_text(encoding="utf-8"))
            review = review_from_files(
                folder.document_path(rel),
                folder.schema,
                report,
                folder.result_path(rel),
                review_below=self.host.options.review_below,
            )
        except (ThinkJsonError, OSError, ValueError) as error:
            self.notify(str(error), title=f"Cannot open {rel}", severity="error")
            return
        screen = ReviewScreen(
            self.host,
            review=review,
            save_path=review.save_path,
            on_saved=lambda _: folder.mark_reviewed(rel),
        )
        self.push_screen(screen)

    # -- app-wide actions --------------------------------------------------------

    def action_help(self) -> None:
        sections = [
            ("Review", list(ReviewScreen.BINDINGS)),
            ("Batch view", list(BatchScreen.BINDINGS)),
            (
                "Everywhere",
                [
                    *self.BINDINGS,
                    Binding("ctrl+p", "", "Command palette", tooltip="Every action, by name"),
                ],
            ),
        ]
        self.push_screen(HelpScreen(sections))

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT_THEME if self.theme == DARK_THEME else DARK_THEME

    def action_batch_view(self) -> None:
        if self.batch is None:
            self.notify("No batch folder open: start with `thinkjson-edge tui OUT_DIR`")
            return
        while isinstance(self.screen, ReviewScreen) and len(self.screen_stack) > 1:
            self.pop_screen()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, ReviewScreen):
            for title, help_text, action in (
                ("Open a document", "Pick the document to review", "open_document"),
                ("Choose the schema", "Pick the JSON Schema to extract by", "choose_schema"),
                ("Choose the model", "Use another installed model", "choose_model"),
                ("Run the extraction", "Extract the whole document again", "run"),
                ("Re-run the selected field", "Extract one top-level field again", "rerun_field"),
                (
                    "Go to the least confident value",
                    "The least sure value not edited yet; again for the next one up",
                    "next_to_check",
                ),
                ("Save the result", "Write the reviewed object (atomically)", "save"),
            ):
                yield SystemCommand(title, help_text, getattr(screen, f"action_{action}"))
        yield SystemCommand("Dark/light", "Switch the colour theme", self.action_toggle_theme)
        yield SystemCommand("Key bindings", "Show the help screen", self.action_help)


def is_batch_folder(path: Path) -> bool:
    """Whether ``path`` is a batch's output folder (it holds the job database)."""
    return path.is_dir() and (path / DATABASE_NAME).is_file()
