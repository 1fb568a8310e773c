"""Hostile model bundles: odd manifests, links, unlisted and tampered files.

A bundle is a folder that comes from elsewhere. `models import` installs only files its
manifest lists, that are regular files and match their sha256 and size; an odd manifest
is refused with exit 4, a mismatch with exit 8, never a traceback. `models export` ships
only what the store verified. The bundles are made here around a tiny valid GGUF (a
header without tensors), so no case copies or hashes a real model.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_refused, file_hashes, run_cli

EXIT_OK, EXIT_INPUT, EXIT_INTEGRITY = 0, 4, 8


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The model store of these runs: a data folder of their own (inherited by the CLI)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "data" / "thinkjson-edge" / "models"


def tiny_gguf() -> bytes:
    """A complete GGUF v3 file with one metadata key and no tensors."""

    def text(value: bytes) -> bytes:
        return struct.pack("<Q", len(value)) + value

    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
    data += text(b"general.architecture") + struct.pack("<I", 8) + text(b"llama")
    return data + bytes(-len(data) % 32)  # the tensor data starts aligned to 32


def entry(folder: Path, name: str) -> dict[str, Any]:
    data = (folder / name).read_bytes()
    return {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def write_manifest(folder: Path, manifest: Any) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A well-formed bundle of the tiny model, its card and its license."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "tiny.gguf").write_bytes(tiny_gguf())
    (folder / "README.md").write_text("# tiny\n", encoding="utf-8")
    (folder / "LICENSE").write_text("MIT\n", encoding="utf-8")
    files = [entry(folder, name) for name in ("tiny.gguf", "README.md", "LICENSE")]
    manifest = {"format": "thinkjson-edge-bundle/1", "name": "tiny", "files": files}
    write_manifest(folder, manifest)
    return folder


def manifest_of(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


def import_refused(bundle: Path, store: Path, code: int, *words: str) -> str:
    """Import ``bundle``; it is refused with ``code``, nothing is installed, nothing changed."""
    before = file_hashes(bundle)
    line = assert_refused(run_cli("models", "import", bundle), code, *words)
    assert file_hashes(bundle) == before
    assert not store.exists() or not any(store.glob("*.gguf"))
    return line


def test_a_well_formed_bundle_installs_its_listed_files(bundle: Path, store: Path) -> None:
    result = run_cli("models", "import", bundle)
    assert result.returncode == EXIT_OK, result.stderr
    assert (store / "tiny.card.md").read_text(encoding="utf-8") == "# tiny\n"
    assert (store / "tiny.license.txt").read_text(encoding="utf-8") == "MIT\n"


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        ([], ("JSON list",)),
        ("thinkjson-edge-bundle/1", ("JSON str",)),
        (42, ("JSON int",)),
        (None, ("JSON NoneType",)),
        ({"format": "thinkjson-edge-bundle/1", "name": "tiny"}, ("'files'",)),
        ({"name": "tiny", "files": []}, ("not a thinkjson-edge-bundle/1",)),
        ({"format": "thinkjson-edge-bundle/1", "name": "tiny", "files": "tiny.gguf"}, ("'files'",)),
        ({"format": "thinkjson-edge-bundle/1", "name": "tiny", "files": [7]}, ("not an object",)),
    ],
    ids=["list", "string", "number", "null", "no-files", "no-format", "files-string", "entry-int"],
)
def test_odd_manifests_are_refused(
    bundle: Path, store: Path, manifest: Any, words: tuple[str, ...]
) -> None:
    write_manifest(bundle, manifest)
    import_refused(bundle, store, EXIT_INPUT, *words)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("path", "tiny\x00.gguf", ("NUL",)),
        ("path", "x" * 300 + ".gguf", ("bytes long",)),
        ("path", "../tiny.gguf", ("path separator",)),
        ("path", "..", ("'..'",)),
        ("path", 5, ("not a string",)),
        ("sha256", "abc", ("sha256",)),
        ("sha256", None, ("sha256",)),
        ("size", "96", ("size",)),
        ("size", True, ("size",)),
        ("size", -1, ("size",)),
    ],
)
def test_odd_file_entries_are_refused(
    bundle: Path, store: Path, field: str, value: Any, words: tuple[str, ...]
) -> None:
    manifest = manifest_of(bundle)
    manifest["files"][0][field] = value
    write_manifest(bundle, manifest)
    import_refused(bundle, store, EXIT_INPUT, *words)


@pytest.mark.parametrize(
    ("name", "words"),
    [("a\x00b", ("NUL",)), ("n" * 300, ("bytes long",)), (["tiny"], ("not a string",))],
    ids=["nul", "300-characters", "list"],
)
def test_odd_model_names_are_refused(
    bundle: Path, store: Path, name: Any, words: tuple[str, ...]
) -> None:
    manifest = manifest_of(bundle)
    manifest["name"] = name
    write_manifest(bundle, manifest)
    import_refused(bundle, store, EXIT_INPUT, "model name", *words)


def test_a_manifest_that_is_not_utf8_json_is_refused(bundle: Path, store: Path) -> None:
    (bundle / "manifest.json").write_bytes(b"\xff\xfe{")
    import_refused(bundle, store, EXIT_INPUT, "cannot be read as JSON")


def test_a_symlinked_manifest_is_refused(bundle: Path, store: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.json"
    (bundle / "manifest.json").rename(real)
    (bundle / "manifest.json").symlink_to(real)
    import_refused(bundle, store, EXIT_INPUT, "symbolic link")


def test_a_listed_symlink_is_refused_even_when_its_target_matches(
    bundle: Path, store: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("MIT\n", encoding="utf-8")  # the very bytes the manifest lists
    (bundle / "LICENSE").unlink()
    (bundle / "LICENSE").symlink_to(secret)
    import_refused(bundle, store, EXIT_INPUT, "LICENSE", "symbolic link")


def test_a_listed_model_that_is_a_symlink_is_refused(
    bundle: Path, store: Path, tmp_path: Path
) -> None:
    (bundle / "tiny.gguf").rename(tmp_path / "real.gguf")
    (bundle / "tiny.gguf").symlink_to(tmp_path / "real.gguf")
    import_refused(bundle, store, EXIT_INPUT, "tiny.gguf", "symbolic link")


def test_a_listed_fifo_is_refused_without_blocking(bundle: Path, store: Path) -> None:
    (bundle / "README.md").unlink()
    os.mkfifo(bundle / "README.md")
    import_refused(bundle, store, EXIT_INPUT, "README.md", "not a regular file")


def test_a_checksum_mismatch_installs_nothing(bundle: Path, store: Path) -> None:
    (bundle / "README.md").write_text("# tanY\n", encoding="utf-8")  # same size, other bytes
    import_refused(bundle, store, EXIT_INTEGRITY, "README.md has sha256")


def test_a_size_mismatch_installs_nothing(bundle: Path, store: Path) -> None:
    (bundle / "LICENSE").write_text("MIT, and more\n", encoding="utf-8")
    import_refused(bundle, store, EXIT_INTEGRITY, "LICENSE has 14 bytes")


def test_unlisted_files_and_symlinks_are_not_installed_nor_exported(
    bundle: Path, store: Path, tmp_path: Path
) -> None:
    """The issue's case: a README beside the manifest but not in it, linking outside."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n", encoding="utf-8")
    manifest = manifest_of(bundle)
    manifest["files"] = [f for f in manifest["files"] if f["path"] == "tiny.gguf"]
    write_manifest(bundle, manifest)
    (bundle / "README.md").unlink()
    (bundle / "README.md").symlink_to(secret)
    (bundle / "extra.bin").write_bytes(b"unlisted")
    before = file_hashes(bundle, secret)

    result = run_cli("models", "import", bundle)
    assert result.returncode == EXIT_OK, result.stderr
    assert "README.md is not listed" in result.stderr and "extra.bin is not listed" in result.stderr
    assert not (store / "tiny.card.md").exists()
    assert not (store / "tiny.license.txt").exists()  # the bundle's LICENSE is unlisted too
    assert file_hashes(bundle, secret) == before

    out = tmp_path / "exported"
    result = run_cli("models", "export", "tiny", out)
    assert result.returncode == EXIT_OK, result.stderr
    shipped = "".join(path.read_text(encoding="utf-8") for path in out.glob("*.md"))
    assert "root:x" not in shipped and "root:x" not in (out / "LICENSE").read_text()
    assert {p.name for p in out.iterdir()} == {"tiny.gguf", "README.md", "LICENSE", "manifest.json"}


def test_export_ships_no_card_the_store_did_not_verify(
    bundle: Path, store: Path, tmp_path: Path
) -> None:
    assert run_cli("models", "import", bundle).returncode == EXIT_OK
    (store / "tiny.card.md").write_text("# planted\n", encoding="utf-8")
    result = run_cli("models", "export", "tiny", tmp_path / "exported")
    assert_refused(result, EXIT_INTEGRITY, "tiny.card.md", "not the file that was installed")

    (store / "tiny.card.md").unlink()
    (store / "tiny.card.md").symlink_to(bundle / "README.md")  # the right bytes, via a link
    result = run_cli("models", "export", "tiny", tmp_path / "exported-2")
    assert_refused(result, EXIT_INTEGRITY, "symbolic link")


def test_export_refuses_a_model_file_that_changed_in_the_store(
    bundle: Path, store: Path, tmp_path: Path
) -> None:
    assert run_cli("models", "import", bundle).returncode == EXIT_OK
    with (store / "tiny.gguf").open("ab") as handle:
        handle.write(bytes(32))
    result = run_cli("models", "export", "tiny", tmp_path / "exported")
    assert_refused(result, EXIT_INTEGRITY, "its manifest says")
    assert not (tmp_path / "exported" / "tiny.gguf").exists()


def test_a_force_import_drops_the_card_of_the_model_it_replaces(bundle: Path, store: Path) -> None:
    assert run_cli("models", "import", bundle).returncode == EXIT_OK
    manifest = manifest_of(bundle)
    manifest["files"] = [f for f in manifest["files"] if f["path"] != "README.md"]
    write_manifest(bundle, manifest)
    result = run_cli("models", "import", bundle, "--force")
    assert result.returncode == EXIT_OK, result.stderr
    assert not (store / "tiny.card.md").exists()
    assert (store / "tiny.license.txt").exists()
