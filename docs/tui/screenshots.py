"""Make the README's screenshots of ``thinkjson-edge tui`` from the real app and model.

    python docs/tui/screenshots.py            # writes docs/tui/*.svg

The review screens show the embedded default model extracting ``examples/batch-record.txt``
(greedy, so the pictures are the same on every run of the same build); the batch view shows
a batch over ``examples/`` run first into a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from thinkjson_edge.pipeline.extractor import ExtractOptions
from thinkjson_edge.schema import load_schema
from thinkjson_edge.tui.app import ReviewApp
from thinkjson_edge.tui.result_tree import ResultTree
from thinkjson_edge.tui.review_screen import ReviewScreen

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent / "examples"
SIZE = (140, 36)


async def review_shots(workdir: Path) -> None:
    document = workdir / "batch-record.txt"
    shutil.copy(EXAMPLES / "batch-record.txt", document)
    schema = load_schema(EXAMPLES / "batch-record.schema.json")
    app = ReviewApp(document, schema=schema, device="cpu", options=ExtractOptions())
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        while screen.live.written < 400:  # the model is reasoning: show the live output
            await pilot.pause(0.1)
        app.save_screenshot("live-output.svg", str(HERE))
        while screen.review is None:
            await pilot.pause(0.2)
        tree = screen.query_one(ResultTree)
        tree.focus()
        for _ in range(3):
            await pilot.press("down")
        await pilot.pause(0.3)
        app.save_screenshot("review.svg", str(HERE))
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        app.save_screenshot("help.svg", str(HERE))


async def batch_shot(out: Path) -> None:
    app = ReviewApp(out, device="cpu")
    async with app.run_test(size=(120, 20)) as pilot:
        await pilot.pause(0.5)
        app.save_screenshot("batch-view.svg", str(HERE))


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        os.chdir(workdir)  # paths on screen are relative to here: no machine's path shows
        asyncio.run(review_shots(workdir))
        inputs = workdir / "records"
        inputs.mkdir()
        for name in ("batch-record.txt", "receipt.txt"):
            shutil.copy(EXAMPLES / name, inputs / name)
        (inputs / "scan.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")  # fails: shows a reason
        command = [sys.executable, "-m", "thinkjson_edge", "batch", "records"]
        command += ["--schema", str(EXAMPLES / "batch-record.schema.json"), "--out", "out"]
        subprocess.run([*command, "--quiet", "--device", "cpu"], check=False)
        asyncio.run(batch_shot(Path("out").resolve()))
    for svg in sorted(HERE.glob("*.svg")):
        print(svg.relative_to(HERE.parent.parent))


if __name__ == "__main__":
    main()
