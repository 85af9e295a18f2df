"""Build and update: incremental embedding, model checks, bad input, and crash safety (a real SIGKILL)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError
from backends.rag import build_index, query_index
from backends.rag.store import build_lock, open_index

pytest.importorskip("faiss")
FIXTURES = Path(__file__).parent / "fixtures" / "rag"
sys.path.insert(0, str(FIXTURES))
from rag_fake_embedder import FakeEmbedder  # noqa: E402

SMALL = {"chunk_tokens": 32, "overlap_tokens": 4, "show_progress": False}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    pytest.importorskip("pypdf")
    shutil.copytree(FIXTURES / "corpus", tmp_path / "docs")
    return tmp_path / "docs"


def _build(docs: Path, index: Path, embedder: FakeEmbedder | None = None, **kwargs) -> object:
    warnings: list[str] = []
    result = build_index(docs, index, embedder=embedder or FakeEmbedder(), on_warning=warnings.append, **{**SMALL, **kwargs})
    return result, warnings


def test_first_build_indexes_every_file_and_writes_a_manifest(docs: Path, tmp_path: Path) -> None:
    result, warnings = _build(docs, tmp_path / "ix")
    assert warnings == []
    assert (result.n_files, result.n_files_added, result.n_files_skipped) == (6, 6, 0)
    assert result.n_chunks == result.n_chunks_embedded > 6
    manifest = open_index(tmp_path / "ix").manifest
    assert manifest.embedding_model == "fake-hash" and manifest.embedding_dim == 256
    assert manifest.is_normalized and manifest.metric == "inner_product"
    assert sum(f.n_chunks for f in manifest.files.values()) == manifest.n_chunks == result.n_chunks
    assert {"advisor", "faiss", "python", "fake_embedder"} <= set(manifest.versions)
    raw = json.loads(next((tmp_path / "ix").glob("gen-*/manifest.json")).read_text())
    assert raw["chunk_tokens"] == 32 and raw["overlap_tokens"] == 4


def test_rebuild_of_an_unchanged_folder_embeds_nothing(docs: Path, tmp_path: Path) -> None:
    first, _ = _build(docs, tmp_path / "ix")
    before = query_index(tmp_path / "ix", "descale limescale", 3, FakeEmbedder())
    embedder = FakeEmbedder()
    second, _ = _build(docs, tmp_path / "ix", embedder)
    assert embedder.n_embedded == 0
    assert (second.n_files_unchanged, second.n_chunks_embedded, second.n_chunks) == (6, 0, first.n_chunks)
    assert second.generation != first.generation
    assert query_index(tmp_path / "ix", "descale limescale", 3, FakeEmbedder()) == before
    assert [p.name for p in (tmp_path / "ix").glob("gen-*")] == [second.generation]  # old generation removed


def test_update_embeds_only_new_and_changed_files_and_drops_deleted_ones(docs: Path, tmp_path: Path) -> None:
    _build(docs, tmp_path / "ix")
    (docs / "notes" / "faq.txt").write_text("Refunds now take ten working days because of a new payment provider.\n")
    (docs / "tickets.csv").unlink()
    (docs / "new.md").write_text("# Kayak storage\n\nStore the kayak upside down on padded racks away from sun.\n")
    embedder = FakeEmbedder()
    result, _ = _build(docs, tmp_path / "ix", embedder)
    assert (result.n_files_added, result.n_files_changed, result.n_files_removed, result.n_files_unchanged) == (1, 1, 1, 4)
    assert embedder.n_embedded == result.n_chunks_embedded == 2  # one short chunk per touched file
    files = open_index(tmp_path / "ix").manifest.files
    assert "tickets.csv" not in files and "new.md" in files
    hits = query_index(tmp_path / "ix", "error code E42 inverter", 10, FakeEmbedder())
    assert all(h.source != "tickets.csv" for h in hits)
    assert query_index(tmp_path / "ix", "kayak racks", 1, FakeEmbedder())[0].source == "new.md"


def test_changed_chunking_settings_re_embed_everything_with_a_warning(docs: Path, tmp_path: Path) -> None:
    _build(docs, tmp_path / "ix")
    result, warnings = _build(docs, tmp_path / "ix", chunk_tokens=48)
    assert result.n_files_changed == 6 and result.n_files_unchanged == 0
    assert any("chunking settings" in w for w in warnings)


@pytest.mark.parametrize(
    "other", [FakeEmbedder(model_id="another-model"), FakeEmbedder(dim=128)], ids=["other-name", "other-dim"]
)
def test_a_different_model_is_refused_and_the_index_is_untouched(docs: Path, tmp_path: Path, other: FakeEmbedder) -> None:
    first, _ = _build(docs, tmp_path / "ix")
    (docs / "extra.txt").write_text("Something new that would need embedding with the other model.")
    with pytest.raises(AdvisorError, match="refusing to mix") as info:
        _build(docs, tmp_path / "ix", other)
    assert "--model fake-hash" in info.value.hint
    assert other.n_embedded == 0
    assert open_index(tmp_path / "ix").manifest.n_chunks == first.n_chunks
    assert query_index(tmp_path / "ix", "warranty", 1, FakeEmbedder())[0].source == "notes/faq.txt"


def test_an_empty_folder_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdvisorError, match="no documents to index"):
        _build(tmp_path / "empty", tmp_path / "ix")
    assert not (tmp_path / "ix").exists()


def test_a_folder_of_unreadable_files_leaves_the_existing_index_alone(docs: Path, tmp_path: Path) -> None:
    first, _ = _build(docs, tmp_path / "ix")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.txt").write_bytes(b"\xff\xfe\x00broken")
    (bad / "b.md").write_text("   ")
    with pytest.raises(AdvisorError, match="no readable text"):
        _build(bad, tmp_path / "ix")
    assert open_index(tmp_path / "ix").manifest.n_chunks == first.n_chunks


def test_unreadable_files_are_skipped_with_a_warning_naming_them(docs: Path, tmp_path: Path) -> None:
    (docs / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (docs / "scan.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "image.png").write_bytes(b"\x89PNG")
    result, warnings = _build(docs, tmp_path / "ix")
    assert result.n_files == 6 and result.n_files_skipped == 2
    assert any("`latin1.txt`" in w and "UTF-8" in w for w in warnings)
    assert any("`scan.pdf`" in w and "PDF" in w for w in warnings)
    assert any("1 file(s) whose content is not text" in w and "a PNG image (`image.png`)" in w for w in warnings)
    assert result.n_files_binary == 1 and result.binary_files == {"image.png": "binary: a PNG image"}


def test_a_damaged_index_is_rebuilt_from_scratch_with_a_warning(docs: Path, tmp_path: Path) -> None:
    _build(docs, tmp_path / "ix")
    next((tmp_path / "ix").glob("gen-*/manifest.json")).write_text("{not json")
    result, warnings = _build(docs, tmp_path / "ix")
    assert result.n_files_added == 6 and any("damaged" in w for w in warnings)


def test_a_second_concurrent_build_is_refused(docs: Path, tmp_path: Path) -> None:
    with build_lock(tmp_path / "ix"), pytest.raises(AdvisorError, match="another build"):
        _build(docs, tmp_path / "ix")


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_answer_like_exact_search_on_a_small_corpus(tmp_path: Path, kind: str) -> None:
    docs = _many_docs(tmp_path / "docs", 40)
    _build(docs, tmp_path / "exact", index_type="flat")
    result, _ = _build(docs, tmp_path / "ann", index_type=kind)
    assert result.index_type == kind
    for question in ("item 1207 item 1208", "item 3935", "topic 3 sentence 7"):
        exact = query_index(tmp_path / "exact", question, 1, FakeEmbedder(), mode="dense")
        approx = query_index(tmp_path / "ann", question, 1, FakeEmbedder(), mode="dense")
        assert approx[0].score == pytest.approx(exact[0].score, abs=1e-5)  # ties may pick another chunk


def _many_docs(folder: Path, n_docs: int) -> Path:
    folder.mkdir(parents=True)
    for d in range(n_docs):
        sentences = [f"Document {d} sentence {s} discusses topic {(d * 7 + s) % 23} and item {d * 100 + s}." for s in range(40)]
        (folder / f"doc{d:03d}.txt").write_text("\n\n".join(" ".join(sentences[i : i + 4]) for i in range(0, 40, 4)))
    return folder


KILL_SCRIPT = """
import sys
sys.path.insert(0, {fixtures!r})
import backends.rag.build as build
from rag_fake_embedder import FakeEmbedder
build.CHECKPOINT_BATCH_CHUNKS = {batch}
build.build_index({docs!r}, {index!r}, embedder=FakeEmbedder(delay_s=0.4), chunk_tokens=32, overlap_tokens=4,
                  show_progress=False, on_warning=print)
"""


def test_a_killed_build_leaves_the_old_index_working_and_the_rebuild_resumes(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = 16
    monkeypatch.setattr("backends.rag.build.CHECKPOINT_BATCH_CHUNKS", batch)
    index = tmp_path / "ix"
    first, _ = _build(docs, index)
    _many_docs(docs / "bulk", 20)
    script = KILL_SCRIPT.format(fixtures=str(FIXTURES), batch=batch, docs=str(docs), index=str(index))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    batches = index / "staging" / "batches"
    deadline = time.monotonic() + 120  # generous: a loaded CI machine imports slowly; not a timing assertion
    while len(list(batches.glob("*.npy"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    n_done = len(list(batches.glob("*.npy")))
    assert n_done >= 3

    # the old generation is still live and answers
    assert open_index(index).manifest.n_chunks == first.n_chunks
    assert query_index(index, "citric acid descaler", 1, FakeEmbedder())[0].source == "handbook.md"

    embedder = FakeEmbedder()
    result, _ = _build(docs, index, embedder)
    assert result.n_batches_reused == n_done
    assert result.n_batches_embedded + result.n_batches_reused == -(-result.n_chunks_embedded // batch)
    assert embedder.n_embedded == result.n_chunks_embedded - n_done * batch  # finished batches not redone
    assert result.n_files == 26 and not (index / "staging").exists()
    assert query_index(index, "Document 19 sentence 39", 1, FakeEmbedder())[0].source == "bulk/doc019.txt"


def test_an_update_without_settings_keeps_the_index_settings(docs: Path, tmp_path: Path) -> None:
    _build(docs, tmp_path / "ix", chunk_tokens=40, overlap_tokens=6)
    result, warnings = _build(docs, tmp_path / "ix", chunk_tokens=None, overlap_tokens=None)
    assert result.n_files_unchanged == 6 and warnings == []
    manifest = open_index(tmp_path / "ix").manifest
    assert (manifest.chunk_tokens, manifest.overlap_tokens) == (40, 6)
