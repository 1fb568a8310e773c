"""The modal screens: pick a file, pick a model, edit a value, read the help."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from thinkjson_edge.tui.result_tree import GLYPHS

_DIALOG_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 100;
    max-width: 96%;
    height: 80%;
    border: thick $primary;
    background: $panel;
    padding: 0 1;
}}
{name} .dialog-title {{
    text-style: bold;
    padding-bottom: 1;
}}
"""


class _JsonAndFolders(DirectoryTree):
    """A directory tree showing folders and JSON files only (for picking a schema)."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or _is_json(p))]


class _VisibleFiles(DirectoryTree):
    """A directory tree without hidden files."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")]


def _is_json(path: Path) -> bool:
    return path.suffix.lower() == ".json"


class PathPicker(ModalScreen[Path | None]):
    """Choose a file from a directory tree, or type its path; Esc gives None."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="PathPicker")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, title: str, root: Path, *, json_only: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.root = root if root.is_dir() else root.parent
        self.json_only = json_only

    def compose(self) -> ComposeResult:
        tree_class = _JsonAndFolders if self.json_only else _VisibleFiles
        with Vertical():
            yield Label(self.title_text, classes="dialog-title")
            yield Input(placeholder="or type a path and press Enter", id="typed-path")
            yield tree_class(self.root, id="tree")

    def on_mount(self) -> None:
        self.query_one("#tree").focus()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(event.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = Path(event.value.strip()).expanduser()
        if not path.is_absolute():
            path = self.root / path
        if not path.is_file():
            self.notify(f"{path} is not a file", severity="warning")
            return
        self.dismiss(path)


class ModelPicker(ModalScreen[str | None]):
    """Choose among the default model and the installed ones; Esc gives None."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ModelPicker")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, choices: list[tuple[str, str]], current: str) -> None:
        """``choices``: (model spec, description); ``current``: the spec in use."""
        super().__init__()
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        options = [
            Option(Text.assemble((spec, "bold"), "  ", (about, "dim")), id=spec)
            for spec, about in self.choices
        ]
        with Vertical():
            yield Label("Model (installed with `thinkjson-edge models`)", classes="dialog-title")
            yield OptionList(*options, id="models")

    def on_mount(self) -> None:
        models = self.query_one(OptionList)
        specs = [spec for spec, _ in self.choices]
        if self.current in specs:
            models.highlighted = specs.index(self.current)
        models.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


class EditValue(ModalScreen[str | None]):
    """Type a new value for one field; Enter gives the text, Esc gives None."""

    DEFAULT_CSS = (
        _DIALOG_CSS.format(name="EditValue")
        + """
    EditValue > Vertical { height: auto; }
    EditValue .hint { color: $text-muted; padding-top: 1; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, path: str, current: str, hint: str) -> None:
        super().__init__()
        self.path = path
        self.current = current
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Edit {self.path}", classes="dialog-title")
            yield Input(value=self.current, id="value")
            yield Static(self.hint, classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)


class HelpScreen(ModalScreen[None]):
    """The key bindings of every screen, and what the marks in the result mean."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="HelpScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss(None)", "Close")
    ]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Help: keys and marks (Esc closes)", classes="dialog-title")
            with VerticalScroll():
                for title, bindings in self.sections:
                    yield Static(_bindings_table(title, bindings))
                yield Static(_legend())


def binding_rows(bindings: list[BindingType]) -> list[tuple[str, str]]:
    """(keys, what they do) of each described binding: its tooltip, else its description."""
    return [
        (_keys(binding.key), binding.tooltip or binding.description)
        for binding in bindings
        if isinstance(binding, Binding) and binding.description
    ]


def _keys(key: str) -> str:
    names = {"question_mark": "?", "escape": "Esc", "enter": "Enter"}
    return " / ".join(names.get(k, k) for k in key.split(","))


def _bindings_table(title: str, bindings: list[BindingType]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold", width=12)
    table.add_column()
    for keys, description in binding_rows(bindings):
        table.add_row(keys, description)
    return table


def _legend() -> Table:
    table = Table(title="Marks", title_justify="left", show_header=False, box=None)
    table.add_column(width=12)
    table.add_column()
    meanings = {
        "valid": "valid, and found in the document",
        "low confidence": (
            "the model was unsure of it (confidence under --review-below, default 0.5; "
            "c goes there): check it"
        ),
        "not grounded": "valid, but the text was not found in the document: check it",
        "schema error": "breaks the schema: edit it before saving",
    }
    for status, (glyph, colour) in GLYPHS.items():
        table.add_row(Text(glyph, style=f"bold {colour}"), meanings[status])
    table.add_row(
        Text("0.87", style="dim"),
        "after a value: the model's confidence, its least sure token's probability; "
        '"edited" once you changed it',
    )
    table.add_row(
        Text("edits", style="bold"),
        'read as JSON when that fits the schema, else as text; quote to force text ("12")',
    )
    return table
