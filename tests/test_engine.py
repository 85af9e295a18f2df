"""The rules engine: facts off a typed sheet, rules type-checked at load, every problem reported at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import Field

from advisor.core.catalog import rules_dir
from advisor.core.engine import RulesError, build_facts, check_rules, evaluate, fact_catalog, load_rules
from advisor.core.errors import UnknownNameError
from advisor.core.models import Model
from advisor.core.recommend.facts import FactSheet
from advisor.core.recommend.options import OPTIONS

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


class _Inner(Model):
    n_examples: int = Field(description="examples")
    is_clean: bool = Field(description="clean")


class _Sheet(Model):
    data: _Inner
    name: str = Field(description="a name")
    share: float = Field(description="a share")


FACTS = fact_catalog(_Sheet)
TARGETS = ("a", "b")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


RULE = """
  - id: {id}
    when: {when}
    score: {{a: 5}}
    severity: suggest
    rationale: because
    source: a paper
"""


def test_fact_catalog_reads_names_types_and_descriptions() -> None:
    assert {n: (f.type, f.description) for n, f in FACTS.items()} == {
        "data.n_examples": ("number", "examples"), "data.is_clean": ("bool", "clean"),
        "name": ("str", "a name"), "share": ("number", "a share"),
    }
    sheet = _Sheet(data=_Inner(n_examples=3, is_clean=True), name="x", share=0.5)
    assert build_facts(sheet) == {"data.n_examples": 3, "data.is_clean": True, "name": "x", "share": 0.5}


def test_every_fact_of_the_real_sheet_has_a_type_and_description() -> None:
    facts = fact_catalog(FactSheet)
    assert len(facts) > 90
    assert all(f.description and f.type in ("bool", "number", "str") for f in facts.values())
    assert {"qlora.fits", "lora.one_time_usd", "data.n_examples", "corpus.fits_in_context"} <= set(facts)


def test_shipped_rules_all_load_and_are_valid() -> None:
    files = sorted(rules_dir().glob("*.yaml"))
    assert len(files) >= 5, "rule files were found"
    assert check_rules(rules_dir(), fact_catalog(FactSheet), OPTIONS) == []
    ruleset = load_rules(rules_dir(), fact_catalog(FactSheet), OPTIONS)
    assert len(ruleset.ids) >= 30
    assert all(r.source and r.rationale for r in ruleset.rules)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="needs ../shared/seeds")
def test_every_quoted_seed_sentence_is_in_its_seed_file() -> None:
    """A source that quotes a seed article by its title must quote it: every fragment between `...` is in it."""
    ruleset = load_rules(rules_dir(), fact_catalog(FactSheet), OPTIONS)
    articles = {}
    for path in SEEDS.glob("*.txt"):
        lines = path.read_text().splitlines()
        title = lines[0].strip() if lines[0].strip() != "Fine-Tuning and Adaptation" else \
            f"{lines[0].strip()}: {lines[2].strip()}"
        articles[title] = " ".join(path.read_text().split())
    checked = 0
    for rule in ruleset.rules:
        for title, quote in re.findall(r'"([^"]+)" \(seed article[^)]*\): "([^"]+)"', rule.source):
            assert title in articles, (rule.id, title)
            for fragment in quote.split("..."):
                assert " ".join(fragment.split()).strip(" .") in articles[title], (rule.id, fragment)
            checked += 1
    assert checked >= 15


def test_rules_check_rejects_a_source_that_is_only_a_file_name(tmp_path: Path) -> None:
    bare = RULE.format(id="bare", when="data.is_clean").replace("source: a paper", "source: notes.md")
    seed = RULE.format(id="seed", when="data.is_clean").replace(
        "source: a paper", """source: '004_87053f20c6902ea8.txt: "Use RAG"'""")
    _write(tmp_path, "r.yaml", "rules:" + bare + seed)
    problems = check_rules(tmp_path, FACTS, TARGETS)
    assert any("rule bare" in p and "only a file name" in p for p in problems), problems
    assert any("rule seed" in p and "internal file `004_87053f20c6902ea8.txt`" in p for p in problems), problems
    good = RULE.replace("source: a paper", "source: Dettmers et al. 2023, QLoRA, arXiv:2305.14314")
    _write(tmp_path, "r.yaml", "rules:" + good.format(id="good", when="data.is_clean"))
    assert check_rules(tmp_path, FACTS, TARGETS) == []


def test_all_problems_are_reported_together_with_file_and_rule(tmp_path: Path) -> None:
    _write(tmp_path, "one.yaml", "rules:" + RULE.format(id="good-rule", when="data.n_examples > 3")
           + RULE.format(id="bad-fact", when="data.n_exampels > 3"))
    _write(tmp_path, "two.yaml", "rules:" + RULE.format(id="bad-type", when="name > 3")
           + RULE.format(id="good-rule", when="data.is_clean")
           + "  - id: no-source\n    when: share < 1\n    warn: hi\n    severity: info\n    rationale: r\n")
    problems = check_rules(tmp_path, FACTS, TARGETS)
    text = "\n".join(problems)
    assert "one.yaml: rule bad-fact: unknown fact `data.n_exampels`; did you mean `data.n_examples`?" in text
    assert "two.yaml: rule bad-type: `name > 3`: ordering compares numbers (got str and number)" in text
    assert "two.yaml: rule good-rule: duplicate id (first in one.yaml)" in text
    assert "two.yaml: rule no-source: missing `source`" in text
    assert len(problems) == 4
    with pytest.raises(RulesError) as err:
        load_rules(tmp_path, FACTS, TARGETS)
    assert err.value.problems == problems


def test_yaml_syntax_error_names_file_rule_and_position(tmp_path: Path) -> None:
    _write(tmp_path, "broken.yaml", "rules:" + RULE.format(id="first-rule", when="data.is_clean")
           + "  - id: second-rule\n    when: [unclosed\n    severity: info\n")
    (problem,) = check_rules(tmp_path, FACTS, TARGETS)
    assert re.match(r"broken\.yaml:\d+:\d+: rule second-rule: invalid YAML", problem), problem


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ("__import__('os')", "is not allowed"),
        ("data.n_examples.__class__ == 1", "unknown fact"),
        ("len(name) > 1", "is not allowed"),
        ("data", "is a group of facts"),
        ("share", "must be true or false"),
        ("name in [1, 2]", "needs a list of str"),
        ("data.is_clean and share", "expected bool"),
        ("name == 'x' and (", "not a valid expression"),
        ("[x for x in [1]]", "is not allowed"),
        # would raise at evaluation (ZeroDivisionError, RecursionError): refused at load instead
        ("share / data.n_examples > 1", "divides by `data.n_examples`, which can be 0"),
        ("data.n_examples % 2 == 0", "is not allowed"),
        ("1" + " + 1" * 100 + " > 0", "levels deep, over the limit of 32"),
    ],
)
def test_unsafe_or_ill_typed_expressions_are_load_errors(tmp_path: Path, when: str, fragment: str) -> None:
    _write(tmp_path, "r.yaml", "rules:" + RULE.format(id="r", when=f'"{when}"'))
    problems = check_rules(tmp_path, FACTS, TARGETS)
    assert any(fragment in p for p in problems), problems


def test_effects_are_checked_against_targets_and_severity(tmp_path: Path) -> None:
    _write(tmp_path, "r.yaml", """rules:
  - id: bad-target
    when: data.is_clean
    exclude: [c]
    severity: suggest
    rationale: r
    source: s
  - id: Not_Kebab
    when: data.is_clean
    severity: info
    rationale: r
    source: s
""")
    text = "\n".join(check_rules(tmp_path, FACTS, TARGETS))
    assert "`exclude` names unknown target `c`" in text
    assert "`exclude` and severity `block` go together" in text
    assert "id must be kebab-case" in text
    assert "needs an effect" in text


def test_each_expands_and_evaluate_fires_with_formatted_warnings(tmp_path: Path) -> None:
    _write(tmp_path, "r.yaml", """rules:
  - id: per-target
    each: [a, b]
    when: "{option}.fits"
    note: ["{option}"]
    severity: info
    rationale: r
    source: s
  - id: warn-count
    when: data.n_examples >= 2
    warn: "{data.n_examples:,} examples, {name}"
    severity: warn
    rationale: r
    source: s
""")

    class Fit(Model):
        fits: bool = Field(description="fits")

    class Sheet(Model):
        data: _Inner
        name: str = Field(description="n")
        a: Fit
        b: Fit

    facts = fact_catalog(Sheet)
    ruleset = load_rules(tmp_path, facts, TARGETS)
    values = build_facts(Sheet(data=_Inner(n_examples=2500, is_clean=True), name="z", a=Fit(fits=True),
                               b=Fit(fits=False)))
    fired = evaluate(ruleset, values)
    assert [(f.rule.id, f.rule.note, f.message) for f in fired] == [
        ("per-target", ("a",), ""), ("warn-count", (), "2,500 examples, z")]
    assert [f.rule.id for f in evaluate(ruleset, values, skip={"warn-count"})] == ["per-target"]
    with pytest.raises(UnknownNameError, match="per-targt"):
        evaluate(ruleset, values, skip={"per-targt"})


def test_engine_has_no_domain_words() -> None:
    source = (Path(__file__).parents[1] / "advisor" / "core" / "engine.py").read_text().lower()
    for word in ("lora", "qlora", "gpu", "rag", "dpo", "prompting"):
        assert not re.search(rf"\b{word}\b", source), word
