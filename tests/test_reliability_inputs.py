"""Adversarial inputs: every bad file, number, option or path is one `error:` line, exit 2, no traceback, no debris.

Grouped by class of failure (the Reliability issue, "inputs and rules"): YAML and text files, rule files,
config.json, absurd numbers in answers and options, Click's usage errors, output paths, a terminal a few
columns wide, and user text reaching a terminal or a Markdown report.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import assert_user_error
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from advisor.core.engine import RulesError, check_rules, evaluate, fact_catalog, load_rules
from advisor.core.errors import AdvisorError
from advisor.core.models import Answers, Model
from advisor.core.yamlio import MAX_YAML_DEPTH, load_yaml_file

_register()
runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = {s["id"]: s for s in yaml.safe_load((FIXTURES / "seed-scenarios.yaml").read_text())}
ANSWERS = SCENARIOS["seed-09"]["inputs"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _answers(tmp_path: Path, text: str | None = None, **changes: object) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(text if text is not None else yaml.safe_dump({**ANSWERS, **changes}))
    return path


def _no_debris(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- YAML and text files --------------------------------------------------------------------------------

LAUGHS = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)

BAD_YAML = [
    ("duplicate-key", b"goal: [knowledge]\ntask: a\ngoal: [reasoning]\n", ["key `goal` is given twice", "line 3"]),
    ("duplicate-nested", b"goal: [knowledge]\ngpu:\n  type: l4\n  type: a10g-24gb\n", ["key `type` is given twice"]),
    ("nul-byte", b"goal: [knowledge]\x00\n", ["binary file"]),
    ("not-utf8", b"goal: [knowledge]\ntask: caf\xe9\n", ["not UTF-8", "0xe9"]),
    ("utf16", "goal: [knowledge]\n".encode("utf-16"), ["not UTF-8"]),
    ("deep-flow", b"goal: " + b"[" * 5000 + b"]" * 5000, [f"nested deeper than {MAX_YAML_DEPTH} levels"]),
    ("deep-block", "".join("  " * i + f"k{i}:\n" for i in range(300)).encode(), ["nested deeper"]),
    ("alias-bomb", LAUGHS.encode(), ["aliases expand it past"]),
    ("alias-cycle", b"goal: &x [*x]\n", ["an alias refers to a node that contains it"]),
    ("bad-date", b"goal: [knowledge]\ntask: 2024-13-45\n", ["a value cannot be read", "month must be in 1..12"]),
    ("huge-int", b"goal: [knowledge]\nn_examples: " + b"9" * 5000 + b"\n", ["a value cannot be read"]),
    ("python-tag", b"goal: !!python/object/apply:os.system [ls]\n", ["could not determine a constructor"]),
    ("control-char", b"goal: [knowledge]\ntask: \x1b[31mred\n", ["control character #x001b", "line 2"]),
    ("nul-escape", b'goal: [knowledge]\nexamples_path: "a\\0b.jsonl"\n', ["a string holds a NUL character", "line 2"]),
    ("syntax", b"goal: [knowledge\n", ["not valid YAML at line"]),
    ("tab-indent", b"goal:\n\t- knowledge\n", ["not valid YAML at line 2"]),
    ("list-not-mapping", b"- goal\n- knowledge\n", ["must hold a mapping"]),
    ("empty", b"", ["must hold a mapping"]),
]


@pytest.mark.parametrize(("case", "content", "fragments"), BAD_YAML, ids=[c[0] for c in BAD_YAML])
def test_a_bad_answers_file_is_one_line(tmp_path: Path, case: str, content: bytes, fragments: list[str]) -> None:
    path = tmp_path / "answers.yaml"
    path.write_bytes(content)
    started = time.perf_counter()
    for command in (["recommend", str(path)], ["plan", str(path), "-o", str(tmp_path / "plan.yaml")]):
        assert_user_error(runner.invoke(app, command), *fragments)
    assert time.perf_counter() - started < 10
    assert not (tmp_path / "plan.yaml").exists() and _no_debris(tmp_path) == []


def test_files_that_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(AdvisorError, match="is a folder, not a file"):
        load_yaml_file(tmp_path, "answers file")
    with pytest.raises(AdvisorError, match="does not exist"):
        load_yaml_file(tmp_path / "none.yaml", "answers file")
    with pytest.raises(AdvisorError, match="not a regular file"):
        load_yaml_file("/dev/null", "answers file")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (9 * 1024 * 1024) + b"\n")
    with pytest.raises(AdvisorError, match="larger than 8 MiB"):
        load_yaml_file(big, "answers file")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"rules:\n  - id: a\n    when: data.n_examples > 1\n    when: gpu.owned\n", "b.yaml:4:5: rule a: invalid YAML: key `when`"),
        (b"rules: []\x00", "b.yaml: rules file"),
        (b"rules: [\xff]", "not UTF-8"),
        (b"rules: " + b"[" * 200 + b"]" * 200, "nested deeper"),
        (b'rules:\n  - id: a\n    when: "gpu.owned\\0"\n', "b.yaml:3:11: rule a: invalid YAML: a string holds a NUL"),
    ],
)
def test_a_bad_rules_file_is_a_problem_of_that_file(tmp_path: Path, content: bytes, fragment: str) -> None:
    (tmp_path / "b.yaml").write_bytes(content)
    assert_user_error(runner.invoke(app, ["rules", "check", str(tmp_path)]), fragment)


# --- rules --------------------------------------------------------------------------------------------

from pydantic import Field  # noqa: E402


class _Data(Model):
    n: int = Field(description="a count that can be 0")
    pos: int = Field(gt=0, description="a count that is at least 1")
    ok: bool = Field(description="a flag")


class _Sheet(Model):
    data: _Data
    share: float = Field(description="a share")
    name: str = Field(description="a name")


FACTS = fact_catalog(_Sheet)
RULE = """
  - id: {id}
    when: "{when}"
    score: {score}
    severity: suggest
    rationale: because
    source: a paper
"""
BAD_RULES = [
    ("div-by-fact", "data.n / data.n > 1", "{a: 1}", "divides by `data.n`, which can be 0"),
    ("div-by-zero", "data.pos / 0 > 1", "{a: 1}", "divides by `0`"),
    ("div-by-sum", "data.pos / (data.n + 1) > 1", "{a: 1}", "divides by `data.n + 1`"),
    ("modulo", "data.n % 2 == 0", "{a: 1}", "`data.n % 2` is not allowed"),
    ("power", "data.n ** 99 > 1", "{a: 1}", "is not allowed"),
    ("long", "data.ok and " * 250 + "data.ok", "{a: 1}", "over the limit of 2,000"),
    ("deep-sum", "1" + " + 1" * 200 + " > 0", "{a: 1}", "levels deep, over the limit of 32"),
    ("deep-unary", "-" * 1500 + "1 > 0", "{a: 1}", "levels deep"),
    ("deep-not", "not " * 400 + "data.ok", "{a: 1}", "levels deep"),
    ("deep-parens", "(" * 300 + "data.ok" + ")" * 300, "{a: 1}", "`when`"),
    ("nan-score", "data.ok", "{a: .nan}", "must be a finite number from -1000 to 1000 (got nan)"),
    ("inf-score", "data.ok", "{a: -.inf}", "(got -inf)"),
    ("huge-score", "data.ok", "{a: 1.0e+300}", "(got 1e+300)"),
    ("bigint-score", "data.ok", "{a: " + "9" * 400 + "}", "must be a finite number"),
    ("option-without-each", "data.ok", "{'{option}': 1}", "`{option}` names a target only in a rule with `each`"),
]


def test_rules_that_would_fail_at_evaluation_are_refused_at_load_all_at_once(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n" + "".join(RULE.format(id=i, when=w, score=s) for i, w, s, _ in BAD_RULES))
    started = time.perf_counter()
    problems = check_rules(tmp_path, FACTS, ("a", "b"))
    assert time.perf_counter() - started < 5
    for rule_id, _, _, fragment in BAD_RULES:
        assert any(p.startswith(f"r.yaml: rule {rule_id}: ") and fragment in p for p in problems), (rule_id, problems)
    with pytest.raises(RulesError) as info:
        load_rules(tmp_path, FACTS, ("a", "b"))
    assert info.value.message.startswith(f"{len(problems)} problems in the rules:")


def test_division_by_a_positive_fact_or_a_constant_is_allowed(tmp_path: Path) -> None:
    ok = [("by-positive", "data.n / data.pos > 1"), ("by-constant", "data.n / 1e9 > 1"), ("by-minus", "data.n / -2 > 1")]
    (tmp_path / "r.yaml").write_text("rules:\n" + "".join(RULE.format(id=i, when=w, score="{a: 1}") for i, w in ok))
    ruleset = load_rules(tmp_path, FACTS, ("a", "b"))
    values = {"data.n": 0, "data.pos": 1, "data.ok": True, "share": 0.0, "name": ""}
    assert evaluate(ruleset, values) == []
    assert FACTS["data.pos"].positive and not FACTS["data.n"].positive


WARN_RULE = """
  - id: {id}
    when: data.ok
    warn: "{warn}"
    severity: warn
    rationale: because
    source: a paper
"""


@pytest.mark.parametrize(
    ("warn", "fragment"),
    [
        ("{data.n:99999999}", "is not allowed"),
        ("{data.n:>999}", "too wide: width at most 40"),
        ("{share:.500f}", "too wide"),
        ("{share:.99f}", "precision at most 12"),
        ("{data.n:d}", "is not allowed"),
        ("{data.n:,.0s}", "is not allowed"),
        ("{name:>10}", "with a number format"),
    ],
)
def test_unbounded_or_unfit_warn_formats_are_refused(tmp_path: Path, warn: str, fragment: str) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n" + WARN_RULE.format(id="w", warn=warn))
    started = time.perf_counter()
    problems = check_rules(tmp_path, FACTS, ("a", "b"))
    assert time.perf_counter() - started < 2
    assert len(problems) == 1 and problems[0].startswith("r.yaml: rule w: ") and fragment in problems[0], problems


def test_bounded_warn_formats_still_work(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n" + WARN_RULE.format(id="w", warn="{data.n:,} {share:>12,.2f} {share:.1%}"))
    ruleset = load_rules(tmp_path, FACTS, ("a", "b"))
    fired = evaluate(ruleset, {"data.n": 12345, "data.pos": 1, "data.ok": True, "share": 0.5, "name": ""})
    assert fired[0].message == "12,345         0.50 50.0%"


@pytest.mark.parametrize(
    "raw",
    [
        {"id": ["a"], "when": "data.ok", "score": {"a": 1}},
        {"id": {"x": 1}, "when": "data.ok", "score": {"a": 1}},
        {"id": "r", "when": "data.ok", "warn": ["not", "text"]},
        {"id": "r", "when": "data.ok", "warn": 5},
        {"id": "r", "when": "data.ok", "each": [1, 2], "score": {"a": 1}},
        {"id": "r", "when": "data.ok", "score": 5},
        {"id": "r", "when": {"a": 1}, "score": {"a": 1}},
        {"id": "r", "when": "data.ok", "stack": ["{option}"]},
    ],
)
def test_rule_fields_of_the_wrong_shape_are_problems_not_crashes(tmp_path: Path, raw: dict) -> None:
    rule = {"severity": "suggest", "rationale": "r", "source": "s", **raw}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"rules": [rule]}))
    problems = check_rules(tmp_path, FACTS, ("a", "b"))
    assert problems and all(p.startswith("r.yaml: rule ") for p in problems), problems


def test_an_unchecked_rule_that_divides_by_zero_names_itself() -> None:
    from advisor.core.engine import Rule, RuleSet

    rule = Rule(id="bad-div", when="data.pos / data.n > 1", rationale="r", source="s", severity="suggest",
                file="old.yaml", score=(("a", 1.0),))
    with pytest.raises(RulesError, match=r"old\.yaml: rule bad-div: cannot be evaluated"):
        evaluate(RuleSet((rule,), "v", ("old.yaml",)), {"data.n": 0, "data.pos": 1, "data.ok": True})


def test_rules_check_reports_them_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n" + RULE.format(id="div", when="data.n_examples / data.n_examples > 1",
                                                              score="{lora: .nan}"))
    result = runner.invoke(app, ["rules", "check", str(tmp_path)])
    assert_user_error(result, "r.yaml: rule div: `data.n_examples / data.n_examples` divides by",
                      "r.yaml: rule div: `score` for `lora` must be a finite number")


# --- config.json ----------------------------------------------------------------------------------------

GOOD_CONFIG = {"model_type": "llama", "vocab_size": 32000, "hidden_size": 2048, "intermediate_size": 5632,
               "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4,
               "max_position_embeddings": 2048}
BAD_CONFIGS = [
    ("list", "[1, 2]", ["must hold a JSON object (got a list)"]),
    ("string-hidden", {"hidden_size": "2048"}, ["`hidden_size` must be a whole number from 1 to 131,072 (got '2048')"]),
    ("zero-heads", {"num_attention_heads": 0}, ["`num_attention_heads` must be a whole number"]),
    ("1e9-layers", {"num_hidden_layers": 1e9}, ["`num_hidden_layers` must be a whole number from 1 to 1,024"]),
    ("nan", '{"model_type": "llama", "hidden_size": NaN}', ["`hidden_size` must be a whole number"]),
    ("bool", {"vocab_size": True}, ["`vocab_size` must be a whole number"]),
    ("negative", {"intermediate_size": -1}, ["`intermediate_size`"]),
    ("fraction", {"num_key_value_heads": 2.5}, ["`num_key_value_heads`"]),
    ("huge-context", {"max_position_embeddings": 10**30}, ["`max_position_embeddings`"]),
    ("flag-string", {"attention_bias": "false"}, ["`attention_bias` must be true or false"]),
    ("all-at-once", {"hidden_size": "x", "num_hidden_layers": 0}, ["`hidden_size`", "`num_hidden_layers`"]),
    ("gqa", {"num_key_value_heads": 5}, ["n_heads must be a multiple of n_kv_heads"]),
    ("narrow", {"hidden_size": 8}, ["`hidden_size` (8) must be at least `num_attention_heads` (32)"]),
    ("type-list", {"model_type": ["llama"]}, ["unsupported model_type"]),
    ("truncated", '{"model_type": "llama", ', ["not a valid JSON file"]),
    ("deep", "[" * 100_000 + "]" * 100_000, ["not a valid JSON file (nested too deeply)"]),
    ("huge-number", '{"hidden_size": ' + "9" * 5000 + "}", ["not a valid JSON file"]),
]


@pytest.mark.parametrize(("case", "config", "fragments"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_a_bad_config_json_is_one_line(tmp_path: Path, case: str, config: object, fragments: list[str]) -> None:
    import json

    path = tmp_path / "config.json"
    path.write_text(config if isinstance(config, str) else json.dumps({**GOOD_CONFIG, **config}))
    started = time.perf_counter()
    assert_user_error(runner.invoke(app, ["estimate", "--model", str(path), "--gpu", "a100-80gb"]), *fragments)
    assert time.perf_counter() - started < 10


def test_config_files_that_are_not_json_text(tmp_path: Path) -> None:
    (tmp_path / "utf16.json").write_bytes('{"a": 1}'.encode("utf-16"))
    assert_user_error(runner.invoke(app, ["estimate", "--model", str(tmp_path / "utf16.json")]), "not UTF-8")
    (tmp_path / "bin.json").write_bytes(b"{\x00}")
    assert_user_error(runner.invoke(app, ["estimate", "--model", str(tmp_path / "bin.json")]), "binary file")
    (tmp_path / "empty").mkdir()
    assert_user_error(runner.invoke(app, ["estimate", "--model", str(tmp_path / "empty")]), "no config.json in this folder")


def test_the_largest_published_shapes_still_pass(tmp_path: Path) -> None:
    import json

    big = {**GOOD_CONFIG, "vocab_size": 256000, "hidden_size": 16384, "intermediate_size": 53248,
           "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8,
           "max_position_embeddings": 10_000_000, "num_local_experts": 256}
    (tmp_path / "config.json").write_text(json.dumps(big))
    result = runner.invoke(app, ["estimate", "--model", str(tmp_path / "config.json"), "--json"])
    assert result.exit_code == 0, result.output


# --- absurd numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("requests_per_day: 1e300", ["requests_per_day: Input should be less than or equal to 100000000000"]),
        ("output_tokens: 1000000000000000", ["output_tokens: Input should be less than or equal to 2097152"]),
        ("budget_usd: .inf", ["budget_usd: Input should be a finite number"]),
        ("budget_usd: inf", ["budget_usd: Input should be a finite number"]),
        ("requests_per_day: .nan", ["requests_per_day: Input should be a finite number"]),
        ("n_examples: 1.0e+30", ["n_examples:"]),
        ("corpus_tokens: 1000000000000000000", ["corpus_tokens: Input should be less than or equal to"]),
        ("latency_p95_ms: 99999999999", ["latency_p95_ms:"]),
        ("gpu: {type: a100-80gb, count: 100000000}", ["gpu.count: Input should be less than or equal to 100000"]),
        ("task: " + "x" * 5000, ["task: String should have at most 2000 characters"]),
        ("requests_per_day: 1e300\noutput_tokens: .inf", ["requests_per_day:", "output_tokens:"]),
    ],
)
def test_absurd_answers_name_the_field(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = _answers(tmp_path, "goal: [knowledge]\nn_documents: 10\n" + text + "\n")
    started = time.perf_counter()
    assert_user_error(runner.invoke(app, ["recommend", str(path)]), *fragments)
    assert time.perf_counter() - started < 10


def test_the_largest_allowed_answers_finish_quickly(tmp_path: Path) -> None:
    limits = {"n_examples": 10**9, "mean_example_tokens": 2**21, "n_preference_pairs": 10**9,
              "n_documents": 10**10, "corpus_tokens": 10**14, "budget_usd": 10**10, "requests_per_day": 10**11,
              "latency_p95_ms": 1, "prompt_tokens": 2**21, "output_tokens": 2**21,
              "gpu": {"type": "h100-80gb", "count": 100_000}}
    Answers.model_validate({**ANSWERS, **limits})
    started = time.perf_counter()
    result = runner.invoke(app, ["recommend", str(_answers(tmp_path, **limits)), "--json"])
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - started < 20


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--gpus", "1000000000"], "--gpus: Input should be less than or equal to 100000"),
        (["--seq-len", "1000000000000"], "--seq-len: Input should be less than or equal to 16777216"),
        (["--batch-size", "99999999999"], "--batch-size: Input should be less than or equal to 65536"),
        (["--method", "inference", "--context", "100000000000"], "--context: Input should be less than or equal to"),
        (["--lora-rank", "99999999"], "--lora-rank: Input should be less than or equal to"),
        (["--lora-dropout", "nan"], "--lora-dropout: Input should be a finite number"),
    ],
)
def test_absurd_estimate_options_are_one_line(options: list[str], fragment: str) -> None:
    started = time.perf_counter()
    assert_user_error(runner.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--gpu", "a100-80gb", *options]),
                      fragment)
    assert time.perf_counter() - started < 10


# --- Click's usage errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["estimate", "--model", "llama-3.1-8b", "--batch-size", "abc"], ["invalid value for `--batch-size`",
                                                                          "`advisor estimate --help`"]),
        (["rag", "build", "docs"], ["missing option `-o`"]),
        (["recommend"], ["missing argument"]),
        (["estimate", "--model", "x", "--bogus"], ["no such option: `--bogus`"]),
        (["reccomend", "a.yaml"], ["no such command `reccomend`; did you mean `recommend`?", "`advisor --help`"]),
        (["estimate", "--model", "x", "--method", "lorra"], ["`lorra` is not one of"]),
        (["rules", "check", "--nope"], ["`advisor rules check --help`"]),
    ],
)
def test_usage_errors_are_our_one_line_with_a_help_hint(args: list[str], fragments: list[str]) -> None:
    result = runner.invoke(app, args)
    assert_user_error(result, *fragments)
    assert "Usage:" not in result.output and "hint: run `advisor" in result.stderr


def test_paths_that_fail_click_checks_say_what_is_wrong(tmp_path: Path) -> None:
    assert_user_error(runner.invoke(app, ["recommend", str(tmp_path)]), "is a directory")
    (tmp_path / "f.yaml").write_text("rules: []\n")
    assert_user_error(runner.invoke(app, ["rules", "check", str(tmp_path / "f.yaml")]), "is a file")
    assert_user_error(runner.invoke(app, ["recommend", str(tmp_path / "none.yaml")]), "does not exist")


def test_help_and_version_still_exit_0() -> None:
    for args in (["--help"], ["estimate", "--help"], ["rules", "check", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and result.stdout.startswith("Usage: advisor"), result.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("advisor ")


def test_the_console_script_path_too() -> None:
    bad = subprocess.run([sys.executable, "-m", "advisor", "estimate", "--model", "llama-3.1-8b", "-b", "abc"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: invalid value for `--batch-size`"), bad.stderr
    assert "Traceback" not in bad.stderr and bad.stdout == ""
    ok = subprocess.run([sys.executable, "-m", "advisor", "--version"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("advisor ")


# --- output paths ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _read_only(monkeypatch: pytest.MonkeyPatch, path: Path):  # noqa: ANN202
    """`path` read-only: by chmod, and (root ignores modes) by what os.access answers."""
    real = os.access
    monkeypatch.setattr("advisor.app.outputs.os.access",
                        lambda p, mode: False if Path(p) == path and mode & os.W_OK else real(p, mode))
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        path.chmod(mode)


def test_plan_output_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = _answers(tmp_path)
    plan = ["plan", str(answers), "-o"]
    assert_user_error(runner.invoke(app, [*plan, str(tmp_path / "no" / "such" / "plan.yaml")]),
                      f"folder `{tmp_path / 'no' / 'such'}` does not exist", "mkdir -p")
    assert_user_error(runner.invoke(app, [*plan, str(tmp_path)]), "is a directory")
    assert_user_error(runner.invoke(app, [*plan, str(answers / "plan.yaml")]), "is a file, not a folder")
    assert_user_error(runner.invoke(app, [*plan, "/dev/null"]), "not a regular file")
    locked = tmp_path / "locked"
    locked.mkdir()
    with _read_only(monkeypatch, locked):
        assert_user_error(runner.invoke(app, [*plan, str(locked / "plan.yaml")]), f"folder `{locked}` is not writable")
    assert list(locked.iterdir()) == []
    existing = tmp_path / "plan.yaml"
    existing.write_text("old\n")
    with _read_only(monkeypatch, existing):
        assert_user_error(runner.invoke(app, [*plan, str(existing)]), "is read-only")
    assert existing.read_text() == "old\n" and _no_debris(tmp_path) == []


def test_a_failed_plan_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("advisor.core.fileio.os.replace", no_space)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["plan", str(_answers(tmp_path)), "-o", str(out / "plan.yaml")])
    assert_user_error(result, "cannot write", "No space left on device")
    assert list(out.iterdir()) == []


def test_report_paths_fail_before_anything_is_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = _answers(tmp_path)
    recommend = ["recommend", str(answers), "--report"]
    assert_user_error(runner.invoke(app, [*recommend, str(tmp_path / "nope" / "r.md")]), "does not exist")
    folder = tmp_path / "r.md"
    folder.mkdir()
    assert_user_error(runner.invoke(app, [*recommend, str(folder)]), "is a directory")
    locked = tmp_path / "locked"
    locked.mkdir()
    with _read_only(monkeypatch, locked):
        assert_user_error(runner.invoke(app, [*recommend, str(locked / "r.html")]), "is not writable")
    assert list(locked.iterdir()) == []


def test_rag_build_output_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\nfacts\n")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    build = ["rag", "build", str(docs), "-o"]
    assert_user_error(runner.invoke(app, [*build, str(a_file)]), "is a file; `-o` needs a folder")
    assert_user_error(runner.invoke(app, [*build, str(a_file / "ix")]), "is a file, not a folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    with _read_only(monkeypatch, locked):
        assert_user_error(runner.invoke(app, [*build, str(locked / "deep" / "ix")]), "is not writable")
    assert list(locked.iterdir()) == []
    assert_user_error(runner.invoke(app, ["rag", "build", str(a_file), "-o", str(tmp_path / "ix")]),
                      "documents folder", "is a file, not a folder")
    assert_user_error(runner.invoke(app, ["rag", "query", str(a_file), "what"]), "index folder", "is a file")


@pytest.mark.skipif(IS_ROOT, reason="root writes through file modes")
def test_a_really_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = runner.invoke(app, ["plan", str(_answers(tmp_path)), "-o", str(locked / "plan.yaml")])
        assert_user_error(result, "is not writable")
    finally:
        locked.chmod(0o755)


# --- a narrow terminal ----------------------------------------------------------------------------------

STYLE_ONLY = (
    ["down", "space", "enter"], "invoices", "", "300", "", "", "", "", "", "", "", "", "200", "1000", "", "", "",
    "", "", "", "", "", "", "", "", "",  # languages, task type, tried, example source, alignment, tasks,
    # residency, deployment, teacher
)


def _keys(*steps: str | list[str]):  # noqa: ANN202
    for step in steps:
        yield from step if isinstance(step, list) else [*("space" if c == " " else c for c in step), "enter"]
    yield from ("enter", "enter")  # the plan offer and the run offer: no
    raise EOFError


@pytest.mark.parametrize("columns", ["1", "2", "4", "9"])
def test_ask_on_a_terminal_a_few_columns_wide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    from advisor.app.commands import ask as ask_module

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(ask_module, "_interactive", lambda: True)
    monkeypatch.setattr(ask_module, "_terminal", lambda: contextlib.nullcontext(_keys(*STYLE_ONLY)))
    result = runner.invoke(app, ["ask"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and (tmp_path / "answers.yaml").is_file()


@pytest.mark.parametrize("width", [0, 1, 2, 3, 4, 8])
def test_the_screen_fits_any_width(width: int) -> None:
    from io import StringIO

    from advisor.app.commands.ask import Screen

    out = StringIO()
    screen = Screen(out, width=width or None)
    screen.draw([("question", "? (1) What must improve? [knowledge]"), ("help", "    " + "word " * 20),
                 ("pointer", "  > 1. knowledge  facts"), ("input", "  > " + "x" * 30)])
    screen.say("done", "answer")
    rows = [row.split("\r\x1b[J")[-1] for row in out.getvalue().split("\n")]
    assert rows and all(len(row) <= max(1, (width or 80) - 1) for row in rows), rows


# --- user text on a terminal and in a report --------------------------------------------------------------

HOSTILE_TASK = "<script>alert(1)</script> [click](javascript:alert(1)) ![x](http://t/p.png) `x` | \x1b]0;pwned\x07\x1b[2J"


def test_a_hostile_task_reaches_no_report_raw(tmp_path: Path) -> None:
    answers = _answers(tmp_path, yaml.safe_dump({**ANSWERS, "task": HOSTILE_TASK}))
    result = runner.invoke(app, ["recommend", str(answers), "--report", str(tmp_path / "r.md")])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\\x1b]0;pwned" in result.stdout
    markdown = (tmp_path / "r.md").read_text()
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "[click](" not in markdown and "![x](" not in markdown and "\x1b" not in markdown
    assert runner.invoke(app, ["recommend", str(answers), "--report", str(tmp_path / "r.html")]).exit_code == 0
    assert "<script>" not in (tmp_path / "r.html").read_text()


def test_errors_show_control_characters_instead_of_obeying_them() -> None:
    result = runner.invoke(app, ["estimate", "--model", "./x\x1b]0;pwned\x07/config.json"])
    assert_user_error(result, "\\x1b]0;pwned\\x07")
    assert "\x1b" not in result.stderr


def test_estimate_shows_a_model_path_as_text(tmp_path: Path) -> None:
    import json

    folder = tmp_path / "m[bold]\x1b[31m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(GOOD_CONFIG))
    result = runner.invoke(app, ["estimate", "--model", str(folder)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "m[bold]\\x1b[31m" in result.stdout


def test_retrieved_chunks_are_shown_as_text() -> None:
    from advisor.app.commands.rag import _hits_text

    class Hit:
        rank, score, source, locator, char_start, char_end = 1, 0.5, "a\x1b]0;x\x07.md", "p1", 0, 10
        dense_rank, lexical_rank, rerank_score = 1, None, None
        text = "hello \x1b[2J\x1b]8;;http://evil\x07link\x1b]8;;\x07 \x9b31m"

    text = _hits_text([Hit()])  # type: ignore[list-item]
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "\\x1b[2J" in text
