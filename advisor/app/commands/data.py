"""`advisor data audit`: duplicates, near-duplicates, conflicts, leaks, lengths and sensitive strings in a data file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from advisor.app.console import user_errors

if TYPE_CHECKING:
    from backends.common.audit import DataAudit


app = typer.Typer()
data_app = typer.Typer(help="Check a training data file before training on it.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# The defaults of a plan's `train` step (advisor.core.models.TrainStep), so the leakage check matches its split.
DEFAULT_EVAL_FRACTION = 0.1
DEFAULT_SEED = 0
TEXT_LISTED = 5  # cases shown per finding in the text summary
MAX_LISTED = 20  # backends.common.audit.MAX_LISTED, kept here so the text summary imports nothing heavy


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _section(label: str, headline: str, details: list[str], n_found: int | None = None) -> list[str]:
    from advisor.app.render.safe import one_line

    shown = [f"            {one_line(d)}" for d in details[:TEXT_LISTED]]
    n_more = (len(details) if n_found is None else n_found) - len(shown)
    if n_more > 0:
        shown.append(f"            ... and {n_more} more (`--json` lists up to {MAX_LISTED} of each)")
    return [f"{label:<11} {headline}", *shown]


def _audit_text(audit: DataAudit) -> str:
    from advisor.app.render.safe import terminal_text

    lines = [f"data        {terminal_text(audit.path)}: {audit.format}, {audit.n_examples} examples kept"]
    lines += _section("duplicates", f"{_count(audit.n_exact_duplicates, 'exact duplicate')} dropped (first copy kept)",
                      [f"line {d.line} repeats line {d.first_line}" for d in audit.exact_duplicates],
                      audit.n_exact_duplicates)
    if audit.n_near_duplicate_pairs is not None:
        lines += _section("near", f"{_count(audit.n_near_duplicate_pairs, 'near-duplicate pair')} (Jaccard ≥ "
                          f"{audit.near_duplicate_threshold:g} on {audit.near_duplicate_shingle_words}-word shingles)",
                          [f"lines {p.line_a} and {p.line_b}: {p.jaccard:.2f}" for p in audit.near_duplicate_pairs],
                          audit.n_near_duplicate_pairs)
    lines += _section("conflicts", f"{_count(audit.n_conflicts, 'prompt')} with different answers"
                      if audit.format != "preference" else "not checked (see note)",
                      [f"lines {', '.join(map(str, c.lines))} ({c.n_answers} answers): {c.prompt}"
                       for c in audit.conflicts], audit.n_conflicts)
    lines += _section("empty", f"{_count(audit.n_empty_answers, 'answer')} with no visible character",
                      [f"line {f.line}" for f in audit.empty_answers], audit.n_empty_answers)
    lines += _section("template", f"{_count(audit.n_template_leaks, 'answer')} holding chat-template markup",
                      [f"line {f.line}: {f.detail}" for f in audit.template_leaks], audit.n_template_leaks)
    if audit.lengths is not None:
        length = audit.lengths
        lines += _section("length", f"{_count(length.n_truncated, 'example')} longer than seq_len {length.seq_len_tokens}: "
                          f"{length.truncated_tokens} of {length.total_tokens} tokens cut, longest {length.max_tokens}",
                          [f"{length.counting}: {length.counting_note}"])
    counts = ", ".join(f"{n} {kind}" for kind, n in audit.sensitive_counts.items())
    lines += _section("sensitive", counts, [f"line {h.line}: {h.kind} {h.masked}" for h in audit.sensitive],
                      sum(audit.sensitive_counts.values()))
    leak = audit.leakage
    lines += _section("split", f"{leak.n_straddling_grouped} of {leak.n_groups} groups of related examples straddle "
                      f"the grouped split ({leak.n_straddling_naive} would straddle a plain shuffled split)",
                      [f"{leak.n_grouped_examples} examples in groups; eval_fraction {leak.eval_fraction:g}, "
                       f"seed {leak.seed}"])
    lines.extend(f"note        {note}" for note in audit.notes)
    for example in audit.sample:
        lines.append(f"sample      line {example.line}")
        lines.extend(f"  > {line}" for line in terminal_text(example.prompt).splitlines())
        lines.extend(f"  < {line}" for line in terminal_text(example.answer).splitlines())
    return "\n".join(lines)


@data_app.command("audit")
def audit(
    path: Annotated[Path, typer.Argument(help="Examples file (JSON Lines), in any format `advisor train` reads",
                                         dir_okay=False)],
    seq_len: Annotated[int | None, typer.Option("--seq-len", min=1, help="Sequence length in tokens to check "
                                                "lengths against; default: no length check")] = None,
    sample: Annotated[int, typer.Option("--sample", min=0, help="Random examples to print for reading "
                                        "(seeded by --seed); default: none")] = 0,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse exact duplicates as bad lines instead of "
                                         "dropping them")] = False,
    eval_fraction: Annotated[float, typer.Option("--eval-fraction", min=0, max=0.99, help="Validation share for "
                                                 "the leakage check; default: a train step's 0.1")] = DEFAULT_EVAL_FRACTION,
    seed: Annotated[int, typer.Option("--seed", help="Split and sample seed; default: a train step's 0")] = DEFAULT_SEED,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")] = False,
) -> None:
    """Audit a data file: duplicates, near-duplicates, conflicts, template leaks, lengths, sensitive strings, split."""
    with user_errors():
        from backends.common.audit import audit_examples
        from backends.common.data import load_examples

        examples = load_examples(path, for_preference=None, strict=strict)
        report = audit_examples(examples, seq_len=seq_len, eval_fraction=eval_fraction, seed=seed, n_sample=sample)
        typer.echo(report.model_dump_json(indent=2) if as_json else _audit_text(report))
