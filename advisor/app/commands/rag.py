"""`advisor rag build|query|eval|serve`: index a folder of documents, search it, measure its retrieval quality, keep
it loaded behind a local endpoint."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from advisor.app.console import user_errors

if TYPE_CHECKING:
    from backends.rag import BuildResult, EvalResult, QueryHit, RagVerdict


app = typer.Typer()
rag_app = typer.Typer(help="Build, update, query and evaluate a retrieval index over documents.", no_args_is_help=True)
app.add_typer(rag_app, name="rag")

PREVIEW_CHARS = 240  # characters of each chunk shown by `rag query` without --json


class IndexChoice(str, Enum):
    auto = "auto"
    flat = "flat"
    hnsw = "hnsw"
    ivf = "ivf"


class ModeChoice(str, Enum):
    dense = "dense"
    lexical = "lexical"
    hybrid = "hybrid"


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")]
ModeOption = Annotated[ModeChoice, typer.Option(
    "--mode", help="dense (faiss), lexical (BM25 over SQLite FTS5) or hybrid (both, reciprocal-rank fusion)")]
RerankOption = Annotated[str | None, typer.Option(
    "--rerank", metavar="MODEL", help="Re-order the top chunks with this sentence-transformers cross-encoder (id or "
    "folder); none ships offline")]


def _warn(message: str) -> None:
    from advisor.app.render.safe import terminal_text

    typer.echo(f"warning: {terminal_text(message)}", err=True)  # warnings name document files


def _require_folder(path: Path, what: str) -> None:
    """A file given where a folder goes is named as such (not "does not exist")."""
    from advisor.core.errors import AdvisorError

    if path.exists() and not path.is_dir():
        raise AdvisorError(f"{what} `{path}` is a file, not a folder", f"give the {what}")


@rag_app.command("build")
def build(
    docs_dir: Annotated[Path, typer.Argument(
        help="Folder of documents (.txt .md .html .pdf .jsonl .csv, and any file whose content is text), recursive")],
    index_dir: Annotated[Path, typer.Option("-o", "--output", help="Index directory; updated in place if it exists")],
    model: Annotated[
        str | None, typer.Option(help="sentence-transformers id or path; default: the index's, else all-MiniLM-L6-v2")
    ] = None,
    chunk_tokens: Annotated[
        int | None, typer.Option(min=16, help="Chunk size in model tokens, capped at the model's max; default: the index's, else 256")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(min=0, help="Tokens shared by neighbouring chunks; default: the index's, else 32")
    ] = None,
    index: Annotated[IndexChoice, typer.Option(help="faiss index; auto: exact up to 50k chunks, then HNSW/IVF")] = (
        IndexChoice.auto
    ),
    text_column: Annotated[
        str | None, typer.Option(help="CSV/JSONL columns kept, comma-separated; default: the index's, else every one")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build an index from a folder, or update it: only new and changed files are embedded."""
    with user_errors():
        from advisor.app.outputs import check_output_dir

        _require_folder(docs_dir, "documents folder")  # before the backend's (heavy) imports
        check_output_dir(index_dir, "-o")
        from backends.rag import build_index

        result = build_index(
            docs_dir, index_dir, model_id=model, chunk_tokens=chunk_tokens, overlap_tokens=overlap,
            index_type=index.value, text_column=text_column, on_warning=_warn,
        )  # fmt: skip
        typer.echo(result.model_dump_json(indent=2) if as_json else _build_text(result))


@rag_app.command("query")
def query(
    index_dir: Annotated[Path, typer.Argument(help="Index directory written by `advisor rag build`")],
    question: Annotated[str, typer.Argument(help="What to search for (after `--` when it starts with a dash: `-- --no-cache`)")],
    k: Annotated[int, typer.Option("-k", min=1, help="Chunks to return")] = 5,
    mode: ModeOption = ModeChoice.hybrid,
    rerank: RerankOption = None,
    no_server: Annotated[bool, typer.Option("--no-server", help="Load the model here even if `advisor rag serve` "
                                            "runs for this index")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the chunks best matching a question: score, source file, position and text.

    Asks `advisor rag serve` when one runs for this index (the model stays loaded there), else loads it here.
    """
    with user_errors():
        _require_folder(index_dir, "index folder")
        from backends.rag import query_index
        from backends.rag.serve import find_server, remote_query

        endpoint = None if no_server else find_server(index_dir)
        hits = remote_query(endpoint, question, k, mode.value, rerank) if endpoint else None
        server = endpoint.url if endpoint and hits is not None else None
        if hits is None:
            hits = query_index(index_dir, question, k, mode=mode.value, rerank_model=rerank)
        if as_json:
            import json

            typer.echo(json.dumps({"question": question, "mode": mode.value, "rerank_model": rerank, "server": server,
                                   "hits": [h.model_dump() for h in hits]}, indent=2))
        else:
            typer.echo(_hits_text(hits))


@rag_app.command("serve")
def serve(
    index_dir: Annotated[Path, typer.Argument(help="Index directory written by `advisor rag build`")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1; 0: any free one")] = 0,
) -> None:
    """Keep the index and its model loaded behind a local HTTP endpoint (127.0.0.1, JSON); `rag query` uses it."""
    with user_errors():
        _require_folder(index_dir, "index folder")
        from backends.rag.serve import serve as serve_index

        serve_index(index_dir, port, on_ready=lambda line: typer.echo(line, err=True))


@rag_app.command("eval")
def evaluate(
    index_dir: Annotated[Path, typer.Argument(help="Index directory written by `advisor rag build`")],
    qa_file: Annotated[
        Path | None, typer.Argument(help="JSON Lines of {question, source or text}; default: held-out sentences")
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Ranks counted for recall@k, MRR and hit rate")] = 5,
    n_questions: Annotated[int, typer.Option(min=1, help="Held-out sentences drawn without a QA file")] = 200,
    seed: Annotated[int, typer.Option(help="Which held-out sentences are drawn")] = 0,
    mode: ModeOption = ModeChoice.hybrid,
    rerank: RerankOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure recall@k, MRR and hit rate of every search mode on the same questions (labelled or held-out
    sentences), and judge `--mode` against lexical search (paired: McNemar on hit@k, bootstrap on MRR)."""
    with user_errors():
        _require_folder(index_dir, "index folder")
        from backends.rag import evaluate_index, rag_verdict

        result = evaluate_index(index_dir, qa_file, k=k, n_questions=n_questions, seed=seed, mode=mode.value,
                                rerank_model=rerank)
        verdict = rag_verdict(result)
        if as_json:
            import json

            payload = {**result.model_dump(mode="json"), "verdict": verdict.model_dump(mode="json") if verdict else None}
            typer.echo(json.dumps(payload, indent=2))
        else:
            typer.echo(_eval_text(result, verdict))


def _build_text(r: BuildResult) -> str:
    from advisor.app.render.safe import terminal_text

    return terminal_text(
        f"index {r.index_dir} ({r.generation}): {r.n_chunks} chunks from {r.n_files} files, "
        f"{r.index_type} ({r.index_type_reason}), {r.embedding_model} ({r.embedding_dim} dims)\n"
        f"files: {r.n_files_added} added, {r.n_files_changed} changed, {r.n_files_unchanged} unchanged, "
        f"{r.n_files_removed} removed, {r.n_files_skipped} skipped, {r.n_files_binary} binary skipped\n"
        f"embedded {r.n_chunks_embedded} chunks ({r.n_batches_embedded} batches, {r.n_batches_reused} resumed) "
        f"in {r.build_seconds:.1f} s"
    )


def _hits_text(hits: list[QueryHit]) -> str:
    from advisor.app.render.safe import one_line

    if not hits:
        return "no chunks found"
    lines = []
    for h in hits:  # document text and file names are data: escape sequences in them are shown, not obeyed
        preview = " ".join(h.text.split())
        preview = preview if len(preview) <= PREVIEW_CHARS else preview[: PREVIEW_CHARS - 1] + "…"
        lines.append(one_line(f"{h.rank}. {h.score:.3f}  {h.source}  {h.locator}  (chars {h.char_start}–{h.char_end})"
                              + _ranks(h)))
        lines.append(f"   {one_line(preview)}")
    return "\n".join(lines)


def _ranks(h: QueryHit) -> str:
    parts = [f"{name} #{rank}" for name, rank in (("dense", h.dense_rank), ("lexical", h.lexical_rank)) if rank]
    return f"  [{', '.join(parts)}]" if parts else ""


def _eval_text(r: EvalResult, verdict: RagVerdict | None = None) -> str:
    lines = [
        f"{r.mode} evaluation, {r.n_questions} questions, {r.search} search, headline mode {r.retrieval}",
        f"{'mode':<16}{'recall@' + str(r.k):>10}{'MRR@' + str(r.k):>8}{'hit rate':>10}",
    ]
    lines += [f"{name:<16}{m.recall_at_k:>10.3f}{m.mrr:>8.3f}{m.hit_rate:>10.3f}" for name, m in r.by_mode.items()]
    if verdict is not None:
        lines.append(f"verdict: {verdict.headline()}")
    return "\n".join(lines)
