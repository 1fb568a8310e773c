"""The model store: bundles (export/import with sha256 manifests), info, verify, remove, pull.

Real files and real llama.cpp throughout. The Hugging Face Hub cannot be reached from CI, so
``pull`` is exercised against a local HTTP server that answers the two Hub calls the client
makes (model info, file download) with Hub-style JSON and headers: that server is the only
stand-in in these tests. The store lives in a temporary data dir (``XDG_DATA_HOME``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from thinkjson_edge.convert import pull as hub_pull

from thinkjson_edge.cli import main
from thinkjson_edge.models import store as model_store
from thinkjson_edge.models.choice import choose_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "example-org/tiny-GGUF"


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return model_store.store_dir()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def bundle_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded base model exported once as a bundle (copied per test that changes it)."""
    folder = tmp_path_factory.mktemp("bundle") / "smollm"
    model_store.export_bundle("smollm2-135m-base", folder)
    return folder


@pytest.fixture
def bundle(bundle_source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle_source, tmp_path / "bundle"))


def test_export_writes_gguf_card_license_and_manifest(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == model_store.BUNDLE_FORMAT
    assert manifest["name"] == "smollm2-135m-base" and manifest["quant"] == "q4_1"
    assert {entry["path"] for entry in manifest["files"]} == {
        "smollm2-135m-base.gguf",
        "LICENSE",
        "README.md",
    }
    gguf = next(e for e in manifest["files"] if e["path"].endswith(".gguf"))
    base = choose_model("smollm2-135m-base").path
    assert gguf["sha256"] == hashlib.sha256(base.read_bytes()).hexdigest()
    assert "apache-2.0" in (bundle / "LICENSE").read_text()
    assert "models import" in (bundle / "README.md").read_text()


def test_import_installs_a_model_the_runtime_can_use(bundle: Path, store: Path) -> None:
    code, output = run("models", "import", str(bundle), "--name", "receipts")
    assert code == 0, output
    installed = store / "receipts.gguf"
    assert installed.is_file()
    assert choose_model("receipts").path == installed  # what `extract --model receipts` runs
    manifest = json.loads((store / "receipts.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(installed.read_bytes()).hexdigest()
    assert manifest["source"]["bundle"] == str(bundle.resolve())

    code, output = run("models", "list", "--json")
    assert code == 0 and [row["name"] for row in json.loads(output)] == ["receipts"]
    code, output = run("models", "info", "receipts", "--json")
    info = json.loads(output)
    assert code == 0 and info["architecture"] == "llama" and info["quant"] == "q4_1"
    assert info["vocabulary"] == 49152 and info["chat_template"] is True
    code, output = run("models", "verify", "receipts")
    assert code == 0, output
    assert "sha256" in output and "llama.cpp loads" in output

    code, output = run("models", "remove", "receipts", "--yes")
    assert code == 0, output
    assert list(store.iterdir()) == []


def test_import_refuses_a_wrong_checksum_and_installs_nothing(bundle: Path, store: Path) -> None:
    gguf = bundle / "smollm2-135m-base.gguf"
    data = bytearray(gguf.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte different
    gguf.write_bytes(bytes(data))
    code, output = run("models", "import", str(bundle))
    assert code == 8, output
    assert "does not match its manifest, nothing was installed" in output
    assert "smollm2-135m-base.gguf has sha256" in output
    assert not store.exists() or list(store.iterdir()) == []


def test_import_refuses_a_missing_file(bundle: Path, store: Path) -> None:
    (bundle / "LICENSE").unlink()
    code, output = run("models", "import", str(bundle))
    assert code == 8 and "LICENSE is missing" in output
    assert not store.exists() or list(store.iterdir()) == []


@pytest.mark.parametrize(
    "breakage",
    ["no-manifest", "path-escape", "not-json"],
)
def test_import_refuses_a_malformed_bundle(bundle: Path, breakage: str) -> None:
    manifest_path = bundle / "manifest.json"
    if breakage == "no-manifest":
        manifest_path.unlink()
    elif breakage == "not-json":
        manifest_path.write_text("{", encoding="utf-8")
    else:
        manifest = json.loads(manifest_path.read_text())
        manifest["files"][1]["path"] = "../LICENSE"
        manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    code, output = run("models", "import", str(bundle))
    assert code == 4, output


def test_import_does_not_replace_an_installed_model_without_force(bundle: Path) -> None:
    assert run("models", "import", str(bundle))[0] == 0
    code, output = run("models", "import", str(bundle))
    assert code == 7 and "already installed" in output
    assert run("models", "import", str(bundle), "--force")[0] == 0


def test_verify_finds_an_installed_file_that_changed(bundle: Path, store: Path) -> None:
    assert run("models", "import", str(bundle), "--name", "smol")[0] == 0
    installed = store / "smol.gguf"
    with installed.open("r+b") as handle:
        handle.seek(installed.stat().st_size // 2)
        handle.write(b"\x00\x01\x02\x03")
    code, output = run("models", "verify", "smol")
    assert code == 8 and "the manifest says" in output


def test_a_missing_model_says_how_to_get_it() -> None:
    code, output = run("models", "info", "nowhere")
    assert code == 5
    assert "is not installed" in output and "models pull" in output and "models import" in output


# -- pull, against a local stand-in for the Hub ----------------------------------------


class FakeHub:
    """Serves one repository at one commit the way the Hub's API and resolve URLs do."""

    def __init__(self, files: dict[str, bytes], *, lfs_sha256: str | None = None) -> None:
        self.files, self.lfs_sha256 = files, lfs_sha256
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _model_info(self) -> bytes:
        siblings = []
        for name, data in self.files.items():
            entry: dict[str, object] = {"rfilename": name, "size": len(data)}
            if name.endswith(".gguf"):
                sha = self.lfs_sha256 or hashlib.sha256(data).hexdigest()
                entry["lfs"] = {"sha256": sha, "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        info = {"id": REPO, "sha": COMMIT, "siblings": siblings, "cardData": {"license": "mit"}}
        return json.dumps(info).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self
        resolve = re.compile(rf"^/{re.escape(REPO)}/resolve/([^/]+)/(.+)$")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, body: bytes, kind: str, head: bool = False) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _serve(self, head: bool) -> None:
                path = self.path.split("?")[0]
                hub.requests.append(f"{self.command} {path}")
                if path.startswith(f"/api/models/{REPO}/revision/"):
                    return self._send(hub._model_info(), "application/json", head)
                match = resolve.match(path)
                if match and match.group(1) == COMMIT and match.group(2) in hub.files:
                    return self._send(hub.files[match.group(2)], "application/octet-stream", head)
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.end_headers()
                return None

            def do_GET(self) -> None:
                self._serve(head=False)

            def do_HEAD(self) -> None:
                self._serve(head=True)

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def f16_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model re-encoded as F16 by llama.cpp: a published-F16-like file."""
    import llama_cpp

    out = tmp_path_factory.mktemp("f16") / "tiny-F16.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = 1, True  # LLAMA_FTYPE_MOSTLY_F16
    status = llama_cpp.llama_model_quantize(
        str(choose_model("default").path).encode(), str(out).encode(), params
    )
    assert status == 0
    return out


def known(quant: str | None, sha256: str | None = None) -> dict[str, hub_pull.KnownModel]:
    entry = hub_pull.KnownModel(
        name="tiny", repo=REPO, revision="main", description="test", quant=quant, sha256=sha256
    )
    return {"tiny": entry}


@pytest.fixture
def hub(f16_gguf: Path) -> Iterator[FakeHub]:
    files = {"tiny-F16.gguf": f16_gguf.read_bytes(), "README.md": b"# tiny\n", "LICENSE": b"MIT\n"}
    server = FakeHub(files)
    yield server
    server.close()


def test_pull_downloads_checks_quantizes_verifies_and_installs(
    hub: FakeHub, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub_pull, "REGISTRY", known("q8_0"))
    code, output = run("models", "pull", "tiny", "--endpoint", hub.endpoint)
    assert code == 0, output
    assert "verification passed (q8_0)" in output
    manifest = json.loads((store / "tiny.manifest.json").read_text())
    source = manifest["source"]
    assert source["repo"] == REPO and source["revision"] == COMMIT
    assert source["sha256"] == hashlib.sha256(hub.files["tiny-F16.gguf"]).hexdigest()
    assert manifest["quant"] == "q8_0" and manifest["verification"]["passed"]
    assert manifest["license"] == "mit"
    assert (store / "tiny.card.md").read_text() == "# tiny\n"
    info = json.loads(run("models", "info", "tiny", "--json")[1])
    assert info["quant"] == "q8_0"
    assert [p.name for p in store.iterdir() if p.name.startswith(".")] == []  # no leftovers
    assert f"GET /{REPO}/resolve/{COMMIT}/tiny-F16.gguf" in hub.requests


def test_pull_refuses_a_download_with_the_wrong_sha256(
    f16_gguf: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("huggingface_hub")
    server = FakeHub({"tiny-F16.gguf": f16_gguf.read_bytes()}, lfs_sha256="0" * 64)
    try:
        monkeypatch.setattr(hub_pull, "REGISTRY", known(None))
        code, output = run("models", "pull", "tiny", "--endpoint", server.endpoint)
    finally:
        server.close()
    assert code == 8, output
    assert "nothing was installed" in output
    assert not store.exists() or list(store.iterdir()) == []


def test_pull_says_clearly_when_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_pull, "REGISTRY", known(None))
    code, output = run("models", "pull", "tiny")
    assert code == 9 and "HF_HUB_OFFLINE" in output


def test_pull_reports_an_unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub_pull, "REGISTRY", known(None))
    code, output = run("models", "pull", "tiny", "--endpoint", "http://127.0.0.1:9")
    assert code == 9 and "cannot reach" in output


def test_registry_knows_the_published_thinkjson_model() -> None:
    entry = hub_pull.REGISTRY["thinkjson-1.5b"]
    assert entry.repo.startswith("MasterControlAIML/") and entry.repo.endswith("-GGUF")
    assert entry.quant == "q4_k_m"
