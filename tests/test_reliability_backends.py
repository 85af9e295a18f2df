"""Reliability of the backends under faults: kills, torn files, full disks, odd names, huge files, permissions.

Each test injects one fault of a class and checks the contract: one `error:` line (or one warning naming the
file) and no traceback, the live index or last complete checkpoint intact, leftovers cleared by the next run,
memory bounded, and outputs readable by their owner only. Slow tests train the tiny demonstration model.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import kill_when_ready

from advisor.core.errors import AdvisorError, RunFailedError

FIXTURES = Path(__file__).parent / "fixtures"
RAG_FIXTURES = FIXTURES / "rag"
ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(RAG_FIXTURES))
SMALL = {"chunk_tokens": 32, "overlap_tokens": 4, "show_progress": False}


def _private(folder: Path) -> list[str]:
    """Paths under `folder` (itself included) that anyone but the owner can read, write or enter."""
    paths = [folder, *folder.rglob("*")]
    return [f"{p} {stat.filemode(p.stat().st_mode)}" for p in paths if not p.is_symlink() and p.stat().st_mode & 0o077]


# ---------------------------------------------------------------------------------------------------------- RAG


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    pytest.importorskip("faiss")
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, topic in [("boats.md", "kayak racks padded"), ("tea.txt", "green tea steeping"),
                        ("notes/bikes.txt", "chain oil gears")]:
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text("\n\n".join(f"Paragraph {i} is about {topic} and item {i}." for i in range(30)))
    return folder


def _build(docs: Path, index: Path, **kwargs):
    from rag_fake_embedder import FakeEmbedder

    from backends.rag import build_index

    warnings: list[str] = []
    result = build_index(docs, index, embedder=FakeEmbedder(), on_warning=warnings.append, **{**SMALL, **kwargs})
    return result, warnings


def _assert_live(index: Path, n_chunks: int) -> None:
    """The index answers with the generation it had."""
    from rag_fake_embedder import FakeEmbedder

    from backends.rag import query_index
    from backends.rag.store import open_index

    assert open_index(index).manifest.n_chunks == n_chunks
    assert query_index(index, "kayak racks", 1, FakeEmbedder())[0].source == "boats.md"


def _assert_clean(index: Path) -> None:
    """Only the layout of a finished index: no staging, one generation, no temporary files."""
    names = sorted(p.name for p in index.iterdir())
    assert names[:3] == [".lock", "ADVISOR_INDEX.txt", "CURRENT"] and len(names) == 4, names
    assert names[3].startswith("gen-")


def test_a_file_deleted_after_hashing_is_skipped_whether_it_changed_or_not(docs: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import backends.rag.build as build

    first, _ = _build(docs, tmp_path / "ix")
    (docs / "tea.txt").write_text("Changed: oolong tea is rolled and oxidised.")
    real_hash = build.hash_file

    def hash_then_delete(path: Path):  # the file vanishes between hashing and reading (or stat-ing) it
        digest = real_hash(path)
        if path.name in ("tea.txt", "bikes.txt"):  # one changed, one unchanged
            path.unlink()
        return digest

    monkeypatch.setattr(build, "hash_file", hash_then_delete)
    result, warnings = _build(docs, tmp_path / "ix")
    assert warnings == ["skipped `tea.txt`: cannot open it (No such file or directory)"]
    assert "tea.txt" not in open_manifest(tmp_path / "ix").files
    assert result.n_files == 2  # boats.md, and bikes.txt from the snapshot it was hashed in
    monkeypatch.undo()
    second, _ = _build(docs, tmp_path / "ix")
    assert second.n_files == 1 and second.n_files_removed == 1
    assert first.n_files == 3


def open_manifest(index: Path):
    from backends.rag.store import open_index

    return open_index(index).manifest


def test_a_file_replaced_by_a_folder_mid_build_is_skipped(docs: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import backends.rag.build as build

    real_open = build.open_document

    def swap_then_open(path: Path, source: str, text_column=None):
        if path.name == "tea.txt":
            path.unlink()
            path.mkdir()
        return real_open(path, source, text_column)

    monkeypatch.setattr(build, "open_document", swap_then_open)
    result, warnings = _build(docs, tmp_path / "ix")
    assert result.n_files == 2 and any("`tea.txt`" in w for w in warnings)


def test_a_folder_that_vanishes_while_listing_is_passed_over(docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.common.loaders import list_files

    real_walk = os.walk

    def walk_and_remove(top, *args, **kwargs):
        for folder, dirs, files in real_walk(top, *args, **kwargs):
            if "notes" in dirs:
                shutil.rmtree(Path(folder) / "notes")
            yield folder, dirs, files

    monkeypatch.setattr(os, "walk", walk_and_remove)
    supported, _ = list_files(docs)
    assert sorted(p.name for p in supported) == ["boats.md", "tea.txt"]


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_printable_warning(docs: Path, tmp_path: Path) -> None:
    name = os.fsencode(docs) + b"/caf\xe9 \xff.txt"  # Latin-1 bytes, as a file copied from an old disk
    fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"Espresso is brewed under pressure.")
    os.close(fd)
    result, warnings = _build(docs, tmp_path / "ix")
    assert result.n_files == 3 and result.n_files_skipped == 1
    assert warnings == ["skipped `caf\\xe9 \\xff.txt`: its name is not UTF-8; rename it to index it"]
    json.loads(result.model_dump_json())  # the warning can be written and printed
    _assert_live(tmp_path / "ix", result.n_chunks)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/full/disk")


def _sqlite_full(database, *args, **kwargs):
    if "mode=ro" in str(database):
        return _real_sqlite_connect(database, *args, **kwargs)
    raise sqlite3.OperationalError("database or disk is full")


_real_sqlite_connect = sqlite3.connect


def _fail_publish(src, dst):
    if Path(dst).name == "CURRENT":
        _enospc()
    return _real_replace(src, dst)


_real_replace = os.replace

DISK_FULL_AT = {  # where a build writes: each place a full disk can hit
    "staging-batch": ("backends.rag.build.save_npy", _enospc),
    "chunks-sqlite": ("backends.rag.store.sqlite3.connect", _sqlite_full),
    "faiss-index": ("backends.rag.index.write_faiss_index", _enospc),
    "publish-current": ("backends.rag.store.os.replace", _fail_publish),
    "claim-marker": ("backends.rag.store.write_text_atomic", _enospc),
}


@pytest.mark.parametrize("where", list(DISK_FULL_AT))
def test_a_full_disk_is_one_error_line_and_the_live_index_survives(docs: Path, tmp_path: Path, where: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    index = tmp_path / "ix"
    first, _ = _build(docs, index)
    if where == "claim-marker":
        (index / "ADVISOR_INDEX.txt").unlink()  # an index from before markers: claiming it writes one
    (docs / "new.txt").write_text("Fresh words that need embedding: sourdough starter and rye flour.")
    target, fault = DISK_FULL_AT[where]
    monkeypatch.setattr(target, fault)
    with pytest.raises(AdvisorError) as info:
        _build(docs, index)
    monkeypatch.undo()
    assert "\n" not in info.value.message and info.value.message.startswith(f"cannot write index `{index}`")
    assert "free space" in info.value.hint
    _assert_live(index, first.n_chunks)
    assert [p.name for p in index.glob("gen-*")] == [first.generation]  # the half generation went at once
    result, _ = _build(docs, index)
    assert result.n_files == 4
    _assert_clean(index)


def test_a_full_disk_through_the_cli_is_one_error_line(docs: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import assert_user_error
    from rag_fake_embedder import FakeEmbedder
    from typer.testing import CliRunner

    from advisor.app.cli import _register, app

    monkeypatch.setattr("backends.common.embedding.SentenceTransformerEmbedder",
                        lambda model_id: FakeEmbedder(model_id=model_id))
    monkeypatch.setattr("backends.rag.index.write_faiss_index", _enospc)
    _register()
    result = CliRunner().invoke(app, ["rag", "build", str(docs), "-o", str(tmp_path / "ix")])
    assert_user_error(result, "No space left on device", "free space", preamble=True)  # after the progress bar
    assert not (tmp_path / "ix").exists()  # a failed first build leaves nothing


FSIZE_SCRIPT = """
import json, resource, signal, sys
sys.path.insert(0, {fixtures!r})
from pathlib import Path
from advisor.core.errors import AdvisorError
from backends.rag import build_index, query_index
from backends.rag.store import open_index
from rag_fake_embedder import FakeEmbedder

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
docs, index = Path({docs!r}), Path({index!r})
kwargs = dict(embedder=FakeEmbedder(), chunk_tokens=32, overlap_tokens=4, show_progress=False, on_warning=print)
first = build_index(docs, index, **kwargs)
report = []
for limit in {limits!r}:
    (docs / f"extra-{{limit}}.txt").write_text(f"One more short file, number {{limit}}, about kayak paddles.")
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        build_index(docs, index, **kwargs)
        outcome = "built"
    except AdvisorError as exc:
        outcome = exc.message
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    live = open_index(index).manifest.n_chunks
    answers = bool(query_index(index, "kayak racks", 1, FakeEmbedder()))
    again = build_index(docs, index, **kwargs)
    leftovers = sorted(p.name for p in index.iterdir())
    report.append(dict(limit=limit, outcome=outcome, live=live, answers=answers, leftovers=leftovers,
                       n_files=again.n_files))
print(json.dumps(dict(first=first.n_chunks, report=report)))
"""


def test_every_write_of_a_build_can_fail_and_the_index_survives(docs: Path, tmp_path: Path) -> None:
    """A real write limit (RLIMIT_FSIZE: EFBIG on every file past N bytes) at sizes that stop a different file:
    the staging batch (~1 KB), chunks.sqlite (~41-45 KB with its FTS5 table), vectors.npy (~50 KB); the last limit
    lets it through."""
    limits = [64, 2_000, 47_000, 1_000_000]
    script = FSIZE_SCRIPT.format(fixtures=str(RAG_FIXTURES), docs=str(docs), index=str(tmp_path / "ix"), limits=limits)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout.splitlines()[-1])
    outcomes = [r["outcome"] for r in data["report"]]
    assert outcomes[-1] == "built" and len(set(outcomes[:-1])) == 3, outcomes  # three different writes failed
    for row in data["report"]:
        assert row["outcome"] == "built" or row["outcome"].startswith("cannot write index"), row
        assert row["live"] >= data["first"] and row["answers"], row  # the old (or the new) generation is live
        assert row["leftovers"][:3] == [".lock", "ADVISOR_INDEX.txt", "CURRENT"] and len(row["leftovers"]) == 4, row


def test_leftovers_of_a_killed_build_are_cleared_by_the_next_one(docs: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.rag.store import clean_leftovers

    index = tmp_path / "ix"
    first, _ = _build(docs, index)
    (index / "gen-000099").mkdir()  # a kill inside write_generation
    (index / "gen-000099" / "chunks.sqlite").write_bytes(b"half")
    (index / "CURRENT.tmp").write_text("gen-000099\n")
    (index / "staging" / "batches").mkdir(parents=True)
    (index / "staging" / "batches" / "abc.tmp").write_bytes(b"half a batch")
    (index / "staging" / "batches" / "abc.npy").write_bytes(b"kept: a complete batch is reused")
    clean_leftovers(index)
    assert sorted(p.name for p in index.iterdir()) == [".lock", "ADVISOR_INDEX.txt", "CURRENT", first.generation,
                                                        "staging"]
    assert [p.name for p in (index / "staging" / "batches").iterdir()] == ["abc.npy"]
    (index / "gen-000099").mkdir()
    _build(docs, index)
    _assert_clean(index)


def test_a_folder_that_is_not_an_index_is_refused_and_left_as_it_was(docs: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    for sub in ("staging", "gen-000001"):
        (mine / sub).mkdir(parents=True)
        (mine / sub / "precious.txt").write_text("not advisor's")
    (mine / "CURRENT").write_text("my own notes\n")
    before = sorted(str(p.relative_to(mine)) for p in mine.rglob("*"))
    with pytest.raises(AdvisorError, match="is not empty and is not an advisor index") as info:
        _build(docs, mine)
    assert "\n" not in info.value.message
    assert sorted(str(p.relative_to(mine)) for p in mine.rglob("*")) == before


def test_empty_folders_and_indexes_from_before_markers_are_accepted(docs: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _build(docs, tmp_path / "empty")
    assert (tmp_path / "empty" / "ADVISOR_INDEX.txt").is_file()
    (tmp_path / "empty" / "ADVISOR_INDEX.txt").unlink()  # as an index built by an older advisor
    (tmp_path / "empty" / "gen-mine").mkdir()  # not a generation name: never deleted
    result, _ = _build(docs, tmp_path / "empty")
    assert result.n_files_unchanged == 3 and (tmp_path / "empty" / "gen-mine").is_dir()


def test_an_index_is_readable_by_its_owner_only(docs: Path, tmp_path: Path) -> None:
    os.umask(old := os.umask(0o022))  # a usual umask: files 0644 unless the backend says otherwise
    try:
        _build(docs, tmp_path / "ix")
        _build(docs, tmp_path / "ix", chunk_tokens=48)  # an update writes a new generation and staging
    finally:
        os.umask(old)
    assert _private(tmp_path / "ix") == []
    assert os.umask(old) == old  # the build restored the umask
    os.umask(old)


def test_a_file_over_the_size_limit_is_skipped_with_a_hint(docs: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backends.common.loaders.MAX_FILE_BYTES", {"streamed": 1000, "parsed": 1000})
    (docs / "small.txt").write_text("A short file about kayak paddles.")
    result, warnings = _build(docs, tmp_path / "ix")
    assert result.n_files == 1
    assert any("`tea.txt`" in w and "limit for a .txt file; split it" in w for w in warnings), warnings


MEMORY_SCRIPT = """
import resource, sys
sys.path.insert(0, {fixtures!r})
from pathlib import Path
from backends.rag.chunking import iter_chunks
from backends.common.loaders import open_document
from rag_fake_embedder import FakeEmbedder

def address_space():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

resource.setrlimit(resource.RLIMIT_AS, (address_space() + {headroom}, resource.RLIM_INFINITY))
embedder = FakeEmbedder(max_tokens=256)
n_chunks = n_chars = 0
for chunk in iter_chunks(open_document(Path({path!r}), "big.txt"), embedder.token_spans, 256, 32, 256):
    n_chunks += 1
    n_chars = chunk.char_end
print(n_chunks, n_chars, chunk.locator)
"""


def test_a_large_file_is_chunked_in_bounded_memory(tmp_path: Path) -> None:
    """4 MiB of text under 64 MiB of address space to spare: whole-text tokenizing needed ~100 MiB for the spans
    alone (and `Document.locate` counted lines from 0 for each chunk, quadratic); streaming needs a few MiB."""
    path = tmp_path / "big.txt"
    line = "the quick brown fox jumps over the lazy dog while seven wizards judge.\n"
    n_lines = (4 << 20) // len(line)
    path.write_text(line * n_lines)
    script = MEMORY_SCRIPT.format(fixtures=str(RAG_FIXTURES), headroom=64 << 20, path=str(path))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    n_chunks, n_chars, *locator = done.stdout.split()
    assert int(n_chars) == len(line) * n_lines - 1  # the last chunk ends at the last character (before "\n")
    assert int(n_chunks) > n_lines * 15 // 256 and locator[-1].endswith(f"–{n_lines}")


# ----------------------------------------------------------------------------------------------------- training


def _checkpoint(folder: Path, step: int, *, state: str | None = None, files=("adapter_model.safetensors",
                                                                             "optimizer.pt")) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_bytes(b"weights")
    (path / "trainer_state.json").write_text(state if state is not None else json.dumps({"global_step": step}))
    return path


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("no state", {"state": ""}),
        ("torn state", {"state": '{"global_step": 3'}),
        ("state of another step", {"state": json.dumps({"global_step": 2})}),
        ("state not an object", {"state": "[3]"}),
        ("no optimizer", {"files": ("adapter_model.safetensors",)}),
        ("no weights", {"files": ("optimizer.pt",)}),
    ],
)
def test_an_unfinished_checkpoint_is_not_resumed_from(tmp_path: Path, case: str, kwargs: dict) -> None:
    from backends.train.fit import _remove_unfinished_checkpoints, last_checkpoint

    complete = _checkpoint(tmp_path, 2)
    torn = _checkpoint(tmp_path, 3, **kwargs)
    if case == "no state":
        (torn / "trainer_state.json").unlink()
    (tmp_path / "checkpoint-4").mkdir()  # killed right after mkdir
    assert last_checkpoint(tmp_path) == complete, case
    _remove_unfinished_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]


def test_sharded_checkpoints_count_as_complete(tmp_path: Path) -> None:
    from backends.train.fit import last_checkpoint

    path = _checkpoint(tmp_path, 5, files=())
    (path / "pytorch_model_fsdp_0").mkdir()
    (path / "optimizer_0").mkdir()
    assert last_checkpoint(tmp_path) == path


def test_torn_state_files_count_as_absent(tmp_path: Path) -> None:
    from backends.train.fit import _cached_eval_loss
    from backends.train.measure import TrainingSession, read_sessions, write_sessions

    for text in ("", '{"eval_loss": 1.2', '{"eval_loss": "nan"}', "[]", '{"eval_loss": NaN}'):
        (tmp_path / "eval_before.json").write_text(text)
        assert _cached_eval_loss(tmp_path / "eval_before.json") is None, text
    (tmp_path / "eval_before.json").write_text('{"eval_loss": 1.25}')
    assert _cached_eval_loss(tmp_path / "eval_before.json") == 1.25
    session = TrainingSession(started_at="2025-01-01T00:00:00+00:00", resumed_from_step=None, first_step=0,
                              last_step=10, wall_seconds=2000.5, n_tokens=12345, is_finished=False)
    write_sessions(tmp_path / "s.json", [session])
    assert read_sessions(tmp_path / "s.json") == [session]
    (tmp_path / "s.json").write_text('{"sessions": [{"started_at": "x"')
    assert read_sessions(tmp_path / "s.json") == []


def test_totals_add_up_over_sessions() -> None:
    from backends.train.measure import MemoryMeter, TrainingSession

    killed = TrainingSession(started_at="t0", resumed_from_step=None, first_step=0, last_step=80,
                             wall_seconds=2319.5, n_tokens=90_000, is_finished=False)
    resumed = TrainingSession(started_at="t1", resumed_from_step=70, first_step=70, last_step=100,
                              wall_seconds=3.5, n_tokens=30_000, is_finished=True)
    meter = MemoryMeter("cpu")
    meter.start()
    measured = meter.stop(n_tokens=30_000, wall_seconds=3.5, sessions=[killed, resumed])
    assert (measured.wall_seconds, measured.n_tokens, measured.n_sessions) == (2323.0, 120_000, 2)
    assert (measured.session_wall_seconds, measured.session_n_tokens) == (3.5, 30_000)
    assert measured.tokens_per_second == pytest.approx(120_000 / 2323.0)


@pytest.mark.parametrize(("key", "value"), [("loss", float("nan")), ("loss", float("inf")),
                                            ("grad_norm", float("nan")), ("train_loss", float("-inf"))])
def test_a_non_finite_loss_stops_with_one_line(tmp_path: Path, key: str, value: float) -> None:
    pytest.importorskip("transformers")
    from types import SimpleNamespace

    from backends.train.fit import _callbacks

    *_, finite = _callbacks(tmp_path / "sessions.json", [], None)
    args, state = SimpleNamespace(fp16=False, learning_rate=float("inf")), SimpleNamespace(global_step=7)
    finite.on_log(args, state, None, logs={"loss": 1.5, "grad_norm": 0.3})  # finite: nothing happens
    with pytest.raises(RunFailedError) as info:
        finite.on_log(args, state, None, logs={"loss": 1.5, key: value})
    also = "" if key == "loss" else " (loss 1.5)"
    assert info.value.message == f"training diverged at step 7: `{key}` is {value}{also}"
    assert "learning_rate" in info.value.hint and "inf" in info.value.hint


def test_an_inf_gradient_norm_is_left_to_the_fp16_loss_scaler(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from types import SimpleNamespace

    from backends.train.fit import _callbacks

    *_, finite = _callbacks(tmp_path / "sessions.json", [], None)
    finite.on_log(SimpleNamespace(fp16=True, learning_rate=1e-4), SimpleNamespace(global_step=3), None,
                  logs={"loss": 2.0, "grad_norm": float("inf")})


def test_a_demo_model_build_killed_part_way_is_built_again(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from backends.common.tiny import MARKER_FILE
    from backends.train.model import resolve_base_model

    records = [{"messages": [{"role": "user", "content": f"What is {i} plus one?"},
                             {"role": "assistant", "content": str(i + 1)}]} for i in range(20)]
    demo = tmp_path / "base-model"
    demo.mkdir()
    (demo / "config.json").write_text("{}")  # killed after the config, before the weights and the marker
    (tmp_path / ".base-model.partial-99999").mkdir()  # a killed build of the new kind
    path = Path(resolve_base_model("tiny-demo", tmp_path, records))
    assert (path / MARKER_FILE).is_file() and (path / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base-model"]
    assert _private(path) == []


def test_private_files_restores_the_umask_after_an_error() -> None:
    from advisor.core.fileio import private_files

    os.umask(before := os.umask(0o022))
    with pytest.raises(ZeroDivisionError), private_files():
        assert os.umask(0o077) & 0o077 == 0o077
        1 / 0  # noqa: B018
    assert os.umask(before) == before


def _plan(runs: Path, name: str, **step) -> Path:
    defaults = {"base_model": "tiny-demo", "data_path": str(FIXTURES / "train" / "sft_instruction.jsonl"),
                "seq_len": 64, "batch_size": 8, "eval_fraction": 0.1, "grad_ckpt": False, "method": "lora"}
    from advisor.core.models import TrainStep

    plan = runs / f"{name}.yaml"
    plan.write_text(yaml.safe_dump({"name": name, "steps": [TrainStep(**{**defaults, **step}).model_dump()]}))
    return plan


@pytest.mark.slow
@pytest.mark.parametrize("learning_rate", [float("inf"), 1e30])
def test_a_diverging_run_fails_with_one_line_naming_the_step(tmp_path: Path, learning_rate: float) -> None:
    pytest.importorskip("trl")
    from typer.testing import CliRunner

    from advisor.app.cli import _register, app

    try:
        plan = _plan(tmp_path, "diverge", max_steps=20, learning_rate=learning_rate)
    except ValueError as exc:  # the plan model may refuse an infinite learning rate itself: fine
        pytest.skip(f"the plan refuses it: {exc}")
    _register()
    result = CliRunner().invoke(app, ["train", "run", str(plan), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "training diverged at step" in errors[0] and "is nan" in errors[0], errors
    assert not list((tmp_path / "run").glob("**/result.json"))  # never reported as succeeded


@pytest.mark.slow
def test_a_resumed_run_reports_the_time_and_tokens_of_every_session(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from typer.testing import CliRunner

    from advisor.app.cli import _register, app
    from backends.train.measure import read_sessions

    plan = _plan(tmp_path, "resume", max_steps=60, learning_rate=1e-2)
    run_dir = tmp_path / "run"
    kill_when_ready([sys.executable, "-m", "advisor", "train", "run", str(plan), "--out", str(run_dir)],
                    lambda: len(list(run_dir.glob("**/model/checkpoint-*/trainer_state.json"))) >= 2,
                    cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, poll=0.02)
    states = sorted(run_dir.glob("**/model/checkpoint-*/trainer_state.json"))
    model_dir = states[0].parents[1]
    step_dir = model_dir.parent  # the run folder, or the step's folder inside it
    assert not list(run_dir.glob("**/result.json"))
    killed = read_sessions(model_dir / "training_sessions.json")
    assert len(killed) == 1 and not killed[0].is_finished and killed[0].wall_seconds > 0
    # A kill inside the next checkpoint write: a folder whose state is torn, beyond the last complete one.
    torn = model_dir / "checkpoint-59"
    torn.mkdir()
    (torn / "adapter_model.safetensors").write_bytes(b"half")
    (torn / "trainer_state.json").write_text('{"global_step": 5')
    (step_dir / "eval_before.json").write_text('{"eval_lo')  # and a torn state file of ours

    _register()
    resumed = CliRunner().invoke(app, ["train", "run", str(plan), "--out", str(run_dir), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    result = json.loads((step_dir / "result.json").read_text())
    fit, measured = result["fit"], result["fit"]["measured"]
    assert fit["global_step"] == 60 and fit["resumed_from_step"] < 59
    assert fit["eval_loss_before"] is not None and fit["eval_loss_after"] < fit["eval_loss_before"]
    sessions = read_sessions(model_dir / "training_sessions.json")
    assert len(sessions) == measured["n_sessions"] == 2 and sessions[1].is_finished
    assert sessions[0].wall_seconds >= killed[0].wall_seconds
    assert measured["wall_seconds"] == pytest.approx(sum(s.wall_seconds for s in sessions))
    assert measured["wall_seconds"] > measured["session_wall_seconds"]
    assert measured["n_tokens"] == sum(s.n_tokens for s in sessions) > measured["session_n_tokens"]
    assert not torn.exists()
    # Everything the backend wrote into the model, checkpoint and demo-model folders is owner-only.
    for folder in (model_dir, step_dir / "base-model"):
        assert _private(folder) == [], folder
