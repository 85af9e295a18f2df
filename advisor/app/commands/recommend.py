"""`advisor recommend`, `advisor plan`, `advisor rules check`: decide, write the plan, check the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advisor.app.console import user_errors

app = typer.Typer()


rules_app = typer.Typer(help="Check the decision rules (rules/*.yaml).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

AnswersArgument = Annotated[Path, typer.Argument(help="Answers file (YAML), e.g. from `advisor ask`", dir_okay=False)]
SkipOption = Annotated[
    list[str] | None, typer.Option("--skip-rule", help="Leave out a rule by id (repeatable); ids are in every reason")
]


@app.command()
def recommend(
    answers_file: AnswersArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout")] = False,
    report_file: Annotated[
        Path | None, typer.Option("--report", help="Also write the report: FILE.md (Markdown) or FILE.html", dir_okay=False)
    ] = None,
    skip_rule: SkipOption = None,
) -> None:
    """Recommend prompting, RAG, LoRA, QLoRA, full fine-tuning or DPO, with costs, memory and reasons."""
    with user_errors():
        from advisor.app.outputs import check_output_file
        from advisor.app.render import terminal as report
        from advisor.core.recommend import load_answers
        from advisor.core.recommend import recommend as decide

        if report_file is not None:  # before any work: a bad path must not follow a printed recommendation
            report.check_report_path(report_file)
            check_output_file(report_file, "--report")
        rec = decide(load_answers(answers_file), frozenset(skip_rule or ()))
        report.print_recommendation(rec, as_json=as_json)
        if report_file is not None:
            report.write_report(rec, report_file)
            typer.echo(f"report written to {report_file}", err=True)


@app.command()
def plan(
    answers_file: AnswersArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Plan file to write (YAML)", dir_okay=False)] = Path(
        "plan.yaml"
    ),
    skip_rule: SkipOption = None,
) -> None:
    """Write the executable plan for the recommended stack: every setting a backend needs, editable by hand."""
    with user_errors():
        from advisor.app.outputs import check_output_file
        from advisor.core.errors import AdvisorError
        from advisor.core.planning import build_plan, save_plan
        from advisor.core.recommend import load_answers
        from advisor.core.recommend import recommend as decide

        check_output_file(output, "-o")
        answers = load_answers(answers_file)
        rec = decide(answers, frozenset(skip_rule or ()))
        try:
            save_plan(build_plan(rec, answers), output)  # atomic: a failure leaves no partial plan
        except OSError as exc:
            raise AdvisorError(f"cannot write `{output}`: {exc.strerror or exc}") from None
        typer.echo(f"plan for {' + '.join(rec.stack)} written to {output}", err=True)


@rules_app.command("check")
def rules_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Folder of rule files; default: the rules shipped with advisor", file_okay=False)
    ] = None,
) -> None:
    """Validate every rule file: schema, unique ids, known facts, types and sources, all problems at once."""
    with user_errors():
        from advisor.core.catalog import rules_dir
        from advisor.core.engine import RulesError, check_rules, fact_catalog, load_rules
        from advisor.core.recommend.facts import FactSheet
        from advisor.core.recommend.options import OPTIONS

        folder = directory or rules_dir()
        facts = fact_catalog(FactSheet)
        problems = check_rules(folder, facts, OPTIONS)
        if problems:
            raise RulesError(problems)
        ruleset = load_rules(folder, facts, OPTIONS)
        ids = {r.id for r in ruleset.rules}
        typer.echo(f"{len(ids)} rules in {len(ruleset.files)} files are valid ({len(facts)} facts; "
                   f"version {ruleset.version})")
