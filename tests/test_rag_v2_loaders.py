"""RAG v2, every document read: suffix-less text files are indexed, binary ones skipped with a count and reason,
and CSV/JSONL rows keep every column with its header."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from backends.common.loaders import list_files, sniff_binary
from backends.rag import build_index, query_index

FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))
pytest.importorskip("faiss")
from rag_fake_embedder import FakeEmbedder  # noqa: E402

_register()
runner = CliRunner()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A Debian-like doc folder: suffix-less text, an unknown suffix, compressed and binary files, a FAQ CSV."""
    docs = tmp_path / "docs"
    (docs / "tarn").mkdir(parents=True)
    (docs / "tarn" / "README").write_text("Tarn copies folders between machines. Pass --resume-partial to continue "
                                          "an interrupted copy where it stopped.\n")
    (docs / "tarn" / "NEWS").write_text("Version 2.4 adds the --fsync-each option and drops support for FAT16.\n")
    (docs / "tarn" / "settings.conf").write_text("# default bandwidth cap in kilobytes per second\nbwlimit = 4096\n")
    (docs / "tarn" / "changelog.Debian.gz").write_bytes(gzip.compress(b"tarn (2.4-1) unstable; urgency=low\n"))
    (docs / "tarn" / "tarn.bin").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(64))
    (docs / "tarn" / "blob").write_bytes(b"header\x00\x01\x02 data")
    (docs / "faq.csv").write_text('question,answer\n"How do I cap bandwidth?","Set bwlimit in settings.conf."\n'
                                  '"Why does the copy stop at 4 GB?","The target is formatted as FAT32; use exFAT."\n')
    return docs


def _build(docs: Path, index: Path, warnings: list[str] | None = None):  # noqa: ANN202
    return build_index(docs, index, embedder=FakeEmbedder(), chunk_tokens=48, overlap_tokens=4, show_progress=False,
                       on_warning=(warnings if warnings is not None else []).append)


def test_suffix_less_and_unknown_suffix_text_files_are_indexed(docs: Path, tmp_path: Path) -> None:
    result = _build(docs, tmp_path / "ix")
    from backends.rag.store import open_index

    files = set(open_index(tmp_path / "ix").manifest.files)
    assert {"tarn/README", "tarn/NEWS", "tarn/settings.conf", "faq.csv"} <= files
    hits = query_index(tmp_path / "ix", "what does --resume-partial do", 1, FakeEmbedder(), mode="lexical")
    assert hits[0].source == "tarn/README" and hits[0].locator == "line 1"
    assert result.n_files == 4


def test_binary_files_are_skipped_with_a_count_and_a_reason_never_silently(docs: Path, tmp_path: Path) -> None:
    warnings: list[str] = []
    result = _build(docs, tmp_path / "ix", warnings)
    assert result.n_files_binary == 3
    assert result.binary_files == {
        "tarn/blob": "binary: a NUL byte at offset 6",
        "tarn/changelog.Debian.gz": "binary: gzip-compressed; decompress it (gunzip) to index it",
        "tarn/tarn.bin": "binary: an executable",
    }
    assert len(warnings) == 1 and warnings[0].startswith("skipped 3 file(s) whose content is not text: ")
    assert "`tarn/changelog.Debian.gz`" in warnings[0] and "gunzip" in warnings[0]


def test_the_cli_prints_the_binary_count_and_the_warning(docs: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backends.common.embedding.SentenceTransformerEmbedder",
                        lambda model_id: FakeEmbedder(model_id=model_id))
    result = runner.invoke(app, ["rag", "build", str(docs), "-o", str(tmp_path / "ix")])
    assert result.exit_code == 0, result.stderr
    assert "3 binary skipped" in result.stdout
    assert "warning: skipped 3 file(s) whose content is not text" in result.stderr


def test_every_csv_column_is_kept_with_its_header(docs: Path, tmp_path: Path) -> None:
    _build(docs, tmp_path / "ix")
    hits = query_index(tmp_path / "ix", "exFAT FAT32", 1, FakeEmbedder(), mode="lexical")
    assert hits[0].source == "faq.csv" and "2" in hits[0].locator  # `row 2`, or `rows 1–2` when they share a chunk
    assert "question: Why does the copy stop at 4 GB?\nanswer: The target is formatted as FAT32" in hits[0].text


def test_named_columns_are_kept_alone_and_a_change_of_them_re_embeds(docs: Path, tmp_path: Path) -> None:
    _build(docs, tmp_path / "ix")
    result = build_index(docs, tmp_path / "ix", embedder=FakeEmbedder(), text_column="answer", show_progress=False,
                         on_warning=lambda m: None)
    assert result.n_files_changed + result.n_files_added == 4  # new settings: every file re-read
    hits = query_index(tmp_path / "ix", "exFAT", 1, FakeEmbedder(), mode="lexical")
    assert "answer: The target" in hits[0].text and "question:" not in hits[0].text


def test_an_index_from_before_v2_re_reads_its_row_files(docs: Path, tmp_path: Path) -> None:
    import json

    _build(docs, tmp_path / "ix")
    manifest = next((tmp_path / "ix").glob("gen-*/manifest.json"))
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "rows_format": 1}))  # as an index written by the old loader
    result = _build(docs, tmp_path / "ix")
    assert result.n_files_changed == 1 and result.n_files_unchanged == 3  # only faq.csv re-read


def test_the_sniffer_allows_a_character_cut_by_the_sample_and_names_bad_bytes(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backends.common.loaders.SNIFF_BYTES", 4)
    path = tmp_path / "NOTES"
    path.write_bytes("abcé and more".encode())  # é is 2 bytes: the 4-byte sample ends inside it
    assert sniff_binary(path) is None
    monkeypatch.setattr("backends.common.loaders.SNIFF_BYTES", 8192)
    path.write_bytes(b"caf\xe9 latin-1 text")
    assert sniff_binary(path) == "not UTF-8 text (bad byte at offset 3)"
    (tmp_path / "EMPTY").write_bytes(b"")
    assert sniff_binary(tmp_path / "EMPTY") is None
    readable, skipped = list_files(tmp_path)
    assert [p.name for p in readable] == ["EMPTY"] and [p.name for p, _ in skipped] == ["NOTES"]
