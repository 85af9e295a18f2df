"""The rules engine: facts from a typed model, rules from YAML, a safe expression evaluator, rule effects.

Knows nothing about the domain. The caller hands it

- a *fact sheet*: a pydantic model whose leaf fields are the facts (`build_facts` flattens nested models to
  dotted names such as `data.n_examples`; `fact_catalog` reads the same names, types and one-line
  descriptions off the class, so rules are type-checked without any values);
- *targets*: the names rule effects may point at (`exclude`, `score`, `stack`, `note`);
- a folder of `*.yaml` rule files, each a mapping with a `rules:` list.

A rule is `id`, `when` (an expression), `rationale`, `source`, `severity` and at least one effect:
`exclude: [target, ...]` (severity must be `block`), `score: {target: delta}`, `stack: [target, ...]`,
`note: [target, ...]` (attach the reason, change nothing) and `warn: "text with {fact.name:,.0f}"`.
`each: [target, ...]` repeats the rule once per target with `{option}` replaced by it.

`when` is parsed with `ast` and allowed only constants, lists of constants, fact names, comparisons
(`== != < <= > >= in not in`), `and`/`or`/`not` and `+ - * /`; it is type-checked against the catalog at
load and evaluated by simpleeval with the facts as its only names and no functions. Never Python `eval`.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from advisor.core.errors import AdvisorError

__all__ = [
    "FactDef",
    "Firing",
    "Rule",
    "RuleSet",
    "RulesError",
    "build_facts",
    "check_rules",
    "evaluate",
    "fact_catalog",
    "load_rules",
]

SEVERITIES = ("info", "suggest", "warn", "block")
EFFECTS = ("exclude", "score", "stack", "note", "warn")
REQUIRED_KEYS = ("id", "when", "rationale", "source", "severity")
KNOWN_KEYS = {*REQUIRED_KEYS, *EFFECTS, "each"}
RULE_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)(:[^{}]*)?\}")
SCALAR_TYPES = {bool: "bool", int: "number", float: "number", str: "str"}


class RulesError(AdvisorError):
    """Rule files with problems; `problems` lists every one as `file: rule ID: message`."""

    def __init__(self, problems: list[str]) -> None:
        head = f"{len(problems)} problems in the rules:\n" if len(problems) > 1 else ""
        super().__init__(head + "\n".join(f"  {p}" for p in problems) if head else problems[0],
                         "fix the rules above, or check them with `advisor rules check`")
        self.problems = problems


@dataclass(frozen=True)
class FactDef:
    """One fact: dotted name, type (`bool`, `number` or `str`) and a one-line description."""

    name: str
    type: str
    description: str


@dataclass(frozen=True)
class Rule:
    """One rule after `each` expansion; `target` is the `each` entry it was made for (None: not expanded)."""

    id: str
    when: str
    rationale: str
    source: str
    severity: str
    file: str
    exclude: tuple[str, ...] = ()
    score: tuple[tuple[str, float], ...] = ()
    stack: tuple[str, ...] = ()
    note: tuple[str, ...] = ()
    warn: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class RuleSet:
    """Every rule that loaded, and a version that changes whenever a rule file does."""

    rules: tuple[Rule, ...]
    version: str
    files: tuple[str, ...]

    @property
    def ids(self) -> set[str]:
        return {r.id for r in self.rules}


@dataclass(frozen=True)
class Firing:
    """A rule whose `when` held, with its warning text filled in."""

    rule: Rule
    message: str = ""


# --- facts --------------------------------------------------------------------------------------------


def _leaf_type(annotation: Any) -> str | None:
    if annotation in SCALAR_TYPES:
        return SCALAR_TYPES[annotation]
    if typing.get_origin(annotation) is typing.Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return "str"
    return None


def fact_catalog(sheet: type[BaseModel], prefix: str = "") -> dict[str, FactDef]:
    """Every fact a sheet class defines: nested models become dotted prefixes, leaves carry type and description.

    Raises:
        TypeError: A leaf field is not bool, int, float, str or a Literal of strings, or has no description.
    """
    catalog: dict[str, FactDef] = {}
    for name, info in sheet.model_fields.items():
        dotted = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            catalog.update(fact_catalog(annotation, dotted + "."))
            continue
        kind = _leaf_type(annotation)
        if kind is None or not info.description:
            raise TypeError(f"fact `{dotted}` needs a scalar type and a description (got {annotation!r})")
        catalog[dotted] = FactDef(dotted, kind, info.description)
    return catalog


def build_facts(sheet: BaseModel) -> dict[str, Any]:
    """Flatten a fact sheet into `{dotted name: value}`, the namespace rules see."""
    values: dict[str, Any] = {}
    for name, value in sheet:
        if isinstance(value, BaseModel):
            values.update({f"{name}.{k}": v for k, v in build_facts(value).items()})
        else:
            values[name] = value
    return values


def _nested(values: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in values.items():
        node = tree
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


# --- type checking of `when` --------------------------------------------------------------------------


class _Checker:
    """Walks a `when` AST: allowed nodes only, every name a known fact, operand types that match."""

    def __init__(self, facts: Mapping[str, FactDef]) -> None:
        self.facts = facts
        self.problems: list[str] = []

    def _dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.facts), n=1, cutoff=0.6)
        members = [f for f in self.facts if f.startswith(name + ".")]
        if members:
            return f"`{name}` is a group of facts, not a fact; use one of {', '.join(f'`{m}`' for m in members[:4])}"
        return f"unknown fact `{name}`" + (f"; did you mean `{close[0]}`?" if close else "")

    def check(self, node: ast.AST) -> str | None:  # noqa: PLR0911, PLR0912 - one branch per node kind
        if isinstance(node, ast.Expression):
            return self.check(node.body)
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = self._dotted(node)
            if name is None:
                self.problems.append("attribute access is allowed on fact names only")
                return None
            if name in ("True", "False"):
                return "bool"
            if name not in self.facts:
                self.problems.append(self._unknown(name))
                return None
            return self.facts[name].type
        if isinstance(node, ast.Constant):
            kind = SCALAR_TYPES.get(type(node.value))
            if kind is None:
                self.problems.append(f"constant {node.value!r} is not a bool, number or string")
            return kind
        if isinstance(node, (ast.List, ast.Tuple)):
            kinds = {self.check(e) for e in node.elts}
            if len(kinds - {None}) > 1:
                self.problems.append("a list mixes types")
            if not all(isinstance(e, ast.Constant) for e in node.elts):
                self.problems.append("a list may hold constants only")
            return "list:" + (next(iter(kinds - {None}), "str"))
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self._expect(value, "bool", "`and`/`or` operand")
            return "bool"
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                self._expect(node.operand, "bool", "`not` operand")
                return "bool"
            if isinstance(node.op, ast.USub):
                self._expect(node.operand, "number", "`-` operand")
                return "number"
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            self._expect(node.left, "number", "arithmetic operand")
            self._expect(node.right, "number", "arithmetic operand")
            return "number"
        if isinstance(node, ast.Compare):
            self._compare(node)
            return "bool"
        self.problems.append(f"`{ast.unparse(node)}` is not allowed (facts, constants, comparisons, and/or/not only)")
        return None

    def _expect(self, node: ast.AST, kind: str, what: str) -> None:
        got = self.check(node)
        if got is not None and got != kind:
            self.problems.append(f"{what} `{ast.unparse(node)}` is {got}, expected {kind}")

    def _compare(self, node: ast.Compare) -> None:
        left = self.check(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.check(right_node)
            text = f"`{ast.unparse(node)}`"
            if None in (left, right):
                pass
            elif isinstance(op, (ast.In, ast.NotIn)):
                if right != f"list:{left}":
                    self.problems.append(f"{text}: `in` needs a list of {left} values on the right (got {right})")
            elif isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                if left != "number" or right != "number":
                    self.problems.append(f"{text}: ordering compares numbers (got {left} and {right})")
            elif isinstance(op, (ast.Eq, ast.NotEq)):
                if left != right:
                    self.problems.append(f"{text}: compares {left} with {right}")
            else:
                self.problems.append(f"{text}: operator not allowed")
            left = right


def _check_when(when: str, facts: Mapping[str, FactDef]) -> list[str]:
    try:
        tree = ast.parse(when, mode="eval")
    except SyntaxError as exc:
        return [f"`when` is not a valid expression ({exc.msg} at column {exc.offset})"]
    checker = _Checker(facts)
    kind = checker.check(tree)
    problems = checker.problems
    if kind not in (None, "bool"):
        problems.append(f"`when` must be true or false, but `{when}` is a {kind}")
    return problems


def _check_message(text: str, facts: Mapping[str, FactDef]) -> list[str]:
    problems = []
    for match in PLACEHOLDER.finditer(text):
        name, spec = match.group(1), match.group(2)
        if name not in facts:
            close = difflib.get_close_matches(name, list(facts), n=1, cutoff=0.6)
            problems.append(f"`warn` names unknown fact `{name}`" + (f"; did you mean `{close[0]}`?" if close else ""))
        elif spec and facts[name].type != "number":
            problems.append(f"`warn` formats `{name}` ({facts[name].type}) with a number format `{spec}`")
    return problems


# --- loading ----------------------------------------------------------------------------------------


def _yaml_problem(path: Path, text: str, exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return f"{path.name}: not valid YAML ({exc})".replace("\n", " ")
    rule = "(before the first rule)"
    for line in text.splitlines()[: mark.line + 1]:
        found = re.match(r"\s*-?\s*id:\s*([\w-]+)", line)
        if found:
            rule = found.group(1)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{path.name}:{mark.line + 1}:{mark.column + 1}: rule {rule}: invalid YAML: {problem}"


def _read_file(path: Path) -> tuple[list[Any], list[str]]:
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [], [_yaml_problem(path, text, exc)]
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        return [], [f"{path.name}: must be a mapping with a `rules:` list"]
    return data["rules"], []


def _raw_problems(raw: Any, where: str, targets: Sequence[str]) -> list[str]:
    if not isinstance(raw, dict):
        return [f"{where}: a rule must be a mapping"]
    problems = [f"{where}: missing `{k}`" for k in REQUIRED_KEYS if not str(raw.get(k) or "").strip()]
    problems += [f"{where}: unknown key `{k}`" for k in raw if k not in KNOWN_KEYS]
    if "id" in raw and not RULE_ID.match(str(raw["id"])):
        problems.append(f"{where}: id must be kebab-case")
    if raw.get("severity") not in (None, *SEVERITIES):
        problems.append(f"{where}: severity must be one of {', '.join(SEVERITIES)} (got `{raw['severity']}`)")
    if not any(raw.get(k) for k in EFFECTS):
        problems.append(f"{where}: needs an effect: one of {', '.join(EFFECTS)}")
    if bool(raw.get("exclude")) != (raw.get("severity") == "block"):
        problems.append(f"{where}: `exclude` and severity `block` go together")
    if "each" in raw and (not isinstance(raw["each"], list) or "{option}" not in str(raw.get("when", ""))):
        problems.append(f"{where}: `each` needs a list and `{{option}}` in `when`")
    for key in ("exclude", "stack", "note", "each"):
        value = raw.get(key) or []
        if not isinstance(value, list):
            problems.append(f"{where}: `{key}` must be a list")
            continue
        problems += [f"{where}: `{key}` names unknown target `{t}`" for t in value
                     if t != "{option}" and t not in targets]
    score = raw.get("score") or {}
    if not isinstance(score, dict):
        problems.append(f"{where}: `score` must map targets to numbers")
    else:
        for target, delta in score.items():
            if target != "{option}" and target not in targets:
                problems.append(f"{where}: `score` names unknown target `{target}`")
            if isinstance(delta, bool) or not isinstance(delta, (int, float)):
                problems.append(f"{where}: `score` for `{target}` must be a number")
    return problems


def _expand(raw: dict[str, Any], file: str) -> list[Rule]:
    def sub(value: Any, target: str | None) -> Any:
        if target is None:
            return value
        if isinstance(value, str):
            return value.replace("{option}", target)
        if isinstance(value, list):
            return [sub(v, target) for v in value]
        if isinstance(value, dict):
            return {sub(k, target): v for k, v in value.items()}
        return value

    rules = []
    for target in raw.get("each") or [None]:
        rules.append(Rule(
            id=str(raw["id"]), when=sub(str(raw["when"]), target), rationale=str(raw["rationale"]).strip(),
            source=str(raw["source"]).strip(), severity=str(raw["severity"]), file=file,
            exclude=tuple(sub(raw.get("exclude") or [], target)),
            score=tuple((k, float(v)) for k, v in sub(raw.get("score") or {}, target).items()),
            stack=tuple(sub(raw.get("stack") or [], target)), note=tuple(sub(raw.get("note") or [], target)),
            warn=sub(raw.get("warn"), target), target=target,
        ))
    return rules


def _collect(directory: Path, facts: Mapping[str, FactDef], targets: Sequence[str]) -> tuple[RuleSet, list[str]]:
    files = sorted(p for p in directory.glob("*.yaml") if p.is_file())
    problems: list[str] = [] if files else [f"{directory}: no rule files (*.yaml)"]
    rules: list[Rule] = []
    first_seen: dict[str, str] = {}
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        raws, file_problems = _read_file(path)
        problems += file_problems
        for index, raw in enumerate(raws, start=1):
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            where = f"{path.name}: rule {rule_id or f'#{index}'}"
            raw_problems = _raw_problems(raw, where, targets)
            if rule_id in first_seen:
                raw_problems.append(f"{where}: duplicate id (first in {first_seen[rule_id]})")
            elif rule_id:
                first_seen[rule_id] = path.name
            problems += raw_problems
            if raw_problems:
                continue
            for rule in _expand(raw, path.name):
                suffix = f" (each: {rule.target})" if rule.target else ""
                found = _check_when(rule.when, facts) + (_check_message(rule.warn, facts) if rule.warn else [])
                problems += [f"{where}{suffix}: {p}" for p in dict.fromkeys(found)]
                rules.append(rule)
    return RuleSet(tuple(rules), "sha256:" + digest.hexdigest()[:12], tuple(p.name for p in files)), problems


def check_rules(directory: str | Path, facts: Mapping[str, FactDef], targets: Sequence[str]) -> list[str]:
    """Every problem in a folder of rule files (schema, ids, facts, types, sources), all at once."""
    directory = Path(directory)
    if not directory.is_dir():
        return [f"{directory}: no such folder"]
    return _collect(directory, facts, targets)[1]


def load_rules(directory: str | Path, facts: Mapping[str, FactDef], targets: Sequence[str]) -> RuleSet:
    """Load and type-check every `*.yaml` rule file of `directory`.

    Raises:
        RulesError: Any problem in any file; the message lists all of them with file and rule id.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RulesError([f"{directory}: no such folder"])
    ruleset, problems = _collect(directory, facts, targets)
    if problems:
        raise RulesError(problems)
    return ruleset


# --- evaluation -------------------------------------------------------------------------------------


def _format(text: str, values: Mapping[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        spec = (match.group(2) or "")[1:]
        return format(value, spec) if spec else str(value)

    return PLACEHOLDER.sub(one, text)


def evaluate(ruleset: RuleSet, values: Mapping[str, Any], skip: Iterable[str] = ()) -> list[Firing]:
    """The rules whose `when` holds for these fact values, in file order; `skip` ids are left out.

    Raises:
        AdvisorError: A skipped id is not a rule (the hint names the closest ids).
    """
    from simpleeval import EvalWithCompoundTypes

    from advisor.core.errors import UnknownNameError

    skip = set(skip)
    for rule_id in sorted(skip - ruleset.ids):
        raise UnknownNameError("rule", rule_id, sorted(ruleset.ids), "advisor rules check")
    evaluator = EvalWithCompoundTypes(names=_nested(values), functions={})
    fired = []
    for rule in ruleset.rules:
        if rule.id in skip or not evaluator.eval(rule.when):
            continue
        fired.append(Firing(rule, _format(rule.warn, values) if rule.warn else ""))
    return fired

