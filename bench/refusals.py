"""What refusing a hostile input costs: peak memory and time of ``thinkjson-edge extract``.

    python bench/refusals.py [--keep DIR]

Each case runs the real command in a fresh process (``python -m thinkjson_edge extract FILE
--schema S``) and reads its own peak resident memory (``ru_maxrss`` from ``os.wait4``), its
CPU time (user + system) and its wall time. The command is started by a bare ``python -S``
launcher: Linux counts the memory a process had before ``exec`` in its ``ru_maxrss``, and
this script's own memory must not be counted. CPU time is the figure to compare on a busy
machine; wall time there includes waiting for a core. The inputs are made here:

- floor: a missing file, so the figure is the interpreter and the command's imports;
- zip bomb: a DOCX of about 1 MB whose member unpacks to 1 GiB of zeros;
- lying member: a DOCX whose member declares 1,000 bytes and unpacks to 64 MiB;
- 40 MB text, UTF-8 and Windows-1252: over four bytes per character allowed, so refused
  before decoding; and 30 MB of Windows-1252, which is decoded (and its encoding detected)
  before its characters are counted;
- /dev/zero and a named pipe, which must be refused without a read.

Every case should end in exit 4 with a one-line message; the table shows it, cut short.
Linux (``ru_maxrss`` in KiB, named pipes, /dev/zero).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = {"type": "object", "properties": {"total": {"type": "string"}}, "required": ["total"]}
WORDS = ("invoice", "total", "amount", "due", "date", "customer", "payment", "terms", "net")
TEXT_BYTES = 40_000_000
MIB = 1 << 20


# Runs argv[1:], waits for it, and prints its exit code, peak memory (KiB) and CPU seconds.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""


@dataclass(frozen=True)
class Outcome:
    case: str
    size: str
    exit_code: int
    cpu_seconds: float
    wall_seconds: float
    peak_mb: float
    message: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Make the inputs in DIR and keep them.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        schema = folder / "s.json"
        schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
        outcomes = [measure(name, make(folder), schema, folder) for name, make in CASES]
    print_table(outcomes)


def measure(case: str, document: Path, schema: Path, folder: Path) -> Outcome:
    """Run extract on ``document`` in a child process; its exit code, time and peak memory."""
    command = [sys.executable, "-m", "thinkjson_edge", "extract", str(document), "-s", str(schema)]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    code, peak_kib, cpu = done.stdout.split()[-3:]
    lines = done.stderr.strip().splitlines()
    message = lines[-1].removeprefix("thinkjson-edge: error: ") if lines else ""
    message = message.replace(str(folder) + os.sep, "")
    return Outcome(
        case, _size(document), int(code), float(cpu), wall, int(peak_kib) / 1024, message
    )


def _size(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return "-"
    if not path.is_file():
        return "-"
    return f"{info.st_size / 1e6:.1f} MB"


# --- the inputs -------------------------------------------------------------------------


def missing(folder: Path) -> Path:
    return folder / "absent.txt"


def zip_bomb(folder: Path) -> Path:
    """About 1 MB on disk, 1 GiB unpacked: one deflated member of zeros, written in pieces."""
    path = folder / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        info = zipfile.ZipInfo("word/media/blob.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as stream:
            piece = bytes(MIB)
            for _ in range(1024):
                stream.write(piece)
    return path


def lying_member(folder: Path) -> Path:
    """A DOCX whose member declares 1,000 bytes in the central directory and holds 64 MiB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<w:document/>")
        archive.writestr("word/media/blob.bin", bytes(64 * MIB))
    data = bytearray(buffer.getvalue())
    entry = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, entry + 24, 1000)  # the uncompressed size
    path = folder / "liar.docx"
    path.write_bytes(bytes(data))
    return path


def text_utf8(folder: Path) -> Path:
    return _text(folder / "big.txt", "utf-8", TEXT_BYTES)


def text_cp1252(folder: Path) -> Path:
    return _text(folder / "big-cp1252.txt", "cp1252", TEXT_BYTES)


def text_cp1252_decoded(folder: Path) -> Path:
    return _text(folder / "30mb-cp1252.txt", "cp1252", TEXT_BYTES * 3 // 4)


def _text(path: Path, encoding: str, total: int) -> Path:
    chosen = random.Random(1)
    size = 0
    with path.open("w", encoding=encoding, newline="\n") as stream:
        while size < total:
            line = " ".join(chosen.choice(WORDS) for _ in range(12)) + " café\n"
            stream.write(line)
            size += len(line.encode(encoding))
    return path


def dev_zero(folder: Path) -> Path:
    return Path("/dev/zero")


def named_pipe(folder: Path) -> Path:
    path = folder / "pipe.txt"
    if not path.exists():
        os.mkfifo(path)
    return path


CASES: list[tuple[str, Callable[[Path], Path]]] = [
    ("floor (missing file)", missing),
    ("zip bomb 1 MB -> 1 GiB", zip_bomb),
    ("lying DOCX member", lying_member),
    ("40 MB text, UTF-8", text_utf8),
    ("40 MB text, cp1252", text_cp1252),
    ("30 MB text, cp1252", text_cp1252_decoded),
    ("/dev/zero", dev_zero),
    ("named pipe", named_pipe),
]


def print_table(outcomes: list[Outcome]) -> None:
    header = (
        f"{'case':<24} {'input':>9} {'exit':>4} {'cpu s':>6} {'wall s':>6} {'peak MB':>7}  message"
    )
    print(header)
    print("-" * (len(header) + 60))
    for o in outcomes:
        message = o.message if len(o.message) <= 64 else o.message[:61] + "..."
        print(
            f"{o.case:<24} {o.size:>9} {o.exit_code:>4} {o.cpu_seconds:>6.2f} "
            f"{o.wall_seconds:>6.1f} {o.peak_mb:>7.0f}  {message}"
        )


if __name__ == "__main__":
    main()
