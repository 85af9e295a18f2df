"""RAG v2, the warm query path: `advisor rag serve` answers JSON on 127.0.0.1 with the model loaded once, and
`advisor rag query` uses it when it runs (falling back to loading the model itself when it does not)."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from backends.rag import Retriever, build_index, query_index
from backends.rag.serve import find_server, make_server, registered, registry_path

FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))
pytest.importorskip("faiss")
from rag_fake_embedder import FakeEmbedder  # noqa: E402

_register()
runner = CliRunner()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "exact", tmp_path / "docs")
    return tmp_path / "docs"


@pytest.fixture
def index(docs: Path, tmp_path: Path) -> Path:
    build_index(docs, tmp_path / "ix", embedder=FakeEmbedder(), show_progress=False, on_warning=lambda m: None)
    return tmp_path / "ix"


@pytest.fixture
def server(index: Path) -> Iterator:
    server = make_server(Retriever(index, FakeEmbedder()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with server, registered(server):
        yield server
        server.shutdown()
    thread.join()


def _no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(model_id):  # noqa: ANN001, ANN202
        raise AssertionError("the CLI loaded a model although a server runs")

    monkeypatch.setattr("backends.common.embedding.SentenceTransformerEmbedder", refuse)


def test_the_cli_query_is_answered_by_the_running_server(server, index: Path,  # noqa: ANN001
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _no_model(monkeypatch)
    result = runner.invoke(app, ["rag", "query", str(index), "What does E4741 mean?", "-k", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["server"] == server.url and out["mode"] == "hybrid" and server.n_queries == 1
    local = query_index(index, "What does E4741 mean?", 2, FakeEmbedder())
    assert [h["source"] for h in out["hits"]] == [h.source for h in local] and local[0].source == "e4741.md"
    assert [h["score"] for h in out["hits"]] == pytest.approx([h.score for h in local])


def test_a_bad_request_through_the_server_is_one_error_line(server, index: Path,  # noqa: ANN001
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _no_model(monkeypatch)
    result = runner.invoke(app, ["rag", "query", str(index), "   "])
    assert result.exit_code == 2 and result.stderr.startswith("error: question: must not be empty")
    assert "Traceback" not in result.output and result.stdout == ""


def test_requests_without_the_token_are_refused(server) -> None:  # noqa: ANN001
    request = urllib.request.Request(server.url + "/query", data=b'{"question": "x"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401
    assert server.url.startswith("http://127.0.0.1:")


def test_the_server_follows_a_rebuild(server, docs: Path, index: Path) -> None:  # noqa: ANN001
    from backends.rag.serve import remote_query

    (docs / "e9999.md").write_text("# Error E9999\n\nError E9999 means the moon is in the way.\n")
    build_index(docs, index, embedder=FakeEmbedder(), show_progress=False, on_warning=lambda m: None)
    hits = remote_query(find_server(index), "E9999", 1, "lexical")
    assert hits is not None and hits[0].source == "e9999.md"


def test_without_a_server_the_query_loads_the_model_and_a_stale_record_is_ignored(index: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backends.common.embedding.SentenceTransformerEmbedder",
                        lambda model_id: FakeEmbedder(model_id=model_id))
    path = registry_path(index)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": "http://127.0.0.1:9", "token": "t", "pid": 2**22 + 12345,
                                "index_dir": str(index.resolve())}))  # a process that does not exist
    assert find_server(index) is None
    result = runner.invoke(app, ["rag", "query", "--json", "--mode", "lexical", str(index), "--", "--one-fs"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["server"] is None and out["hits"][0]["source"] == "option__one_fs.md"


def test_serve_refuses_a_folder_that_is_no_index(tmp_path: Path) -> None:
    result = runner.invoke(app, ["rag", "serve", str(tmp_path)])
    assert result.exit_code == 2 and "not an advisor index" in result.stderr and "Traceback" not in result.output
