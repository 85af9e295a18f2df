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
What could fail at evaluation is refused at load instead: a `when` longer than `MAX_WHEN_CHARS` or nested
deeper than `MAX_WHEN_DEPTH`, a division by anything that can be zero (only non-zero constants and facts
declared positive, `Field(gt=0)`, may divide), a `warn` format wider than `MAX_FORMAT_WIDTH` or more precise
than `MAX_FORMAT_PRECISION`, and a `score` that is not a finite number within `MAX_SCORE_DELTA`.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import math
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from advisor.core.errors import AdvisorError

if typing.TYPE_CHECKING:
    from advisor.core.yamlio import YamlSyntaxError

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
# Bounds on what a rule may ask of the evaluator. The shipped rules stay far inside each one.
MAX_WHEN_CHARS = 2000  # the longest shipped `when` is under 200 characters
MAX_WHEN_DEPTH = 32  # expression tree levels (`a + b + c` nests one level per `+`); shipped rules use under 10
MAX_FORMAT_WIDTH = 40  # `{fact:>40}`: a wider field only pads the message (`{x:99999999}` took minutes and GBs)
MAX_FORMAT_PRECISION = 12  # digits after the point; more than a float holds (~17 significant) is noise
MAX_SCORE_DELTA = 1000.0  # benefit priors are 0-100 and shipped deltas at most ±30; NaN/inf would break ranking
# Sources a reader can open: a bare file name (`notes.md`) or a seed's internal file name is refused.
INTERNAL_FILE = re.compile(r"\b\d{3}_[0-9a-f]{16}\.txt\b")
FILE_NAME = re.compile(r"[\w./-]+\.(?:txt|md|ya?ml|json|pdf|html?|csv)\b")
QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|'[^']*'")
# [[fill]align][sign][z][#][0][width][grouping][.precision][type], with types that suit ints and floats alike
FORMAT_SPEC = re.compile(
    r"(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d{1,3})?[,_]?(?:\.(?P<precision>\d{1,3}))?[eEfFgGn%]?"
)


class RulesError(AdvisorError):
    """Rule files with problems; `problems` lists every one as `file: rule ID: message`."""

    def __init__(self, problems: list[str]) -> None:
        head = f"{len(problems)} problems in the rules:\n" if len(problems) > 1 else ""
        super().__init__(head + "\n".join(f"  {p}" for p in problems) if head else problems[0],
                         "fix the rules above, or check them with `advisor rules check`")
        self.problems = problems


@dataclass(frozen=True)
class FactDef:
    """One fact: dotted name, type (`bool`, `number` or `str`), a one-line description, and whether it is > 0.

    `positive` comes from the field's constraint (`Field(gt=0)`, or `ge=` above 0): only such facts may divide.
    """

    name: str
    type: str
    description: str
    positive: bool = False


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


def _is_positive(metadata: Sequence[Any]) -> bool:
    for item in metadata:
        gt, ge = getattr(item, "gt", None), getattr(item, "ge", None)
        if (isinstance(gt, (int, float)) and gt >= 0) or (isinstance(ge, (int, float)) and ge > 0):
            return True
    return False


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
        catalog[dotted] = FactDef(dotted, kind, info.description, kind == "number" and _is_positive(info.metadata))
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
            if isinstance(node.op, ast.Div) and not self._nonzero(node.right):
                self.problems.append(
                    f"`{ast.unparse(node)}` divides by `{ast.unparse(node.right)}`, which can be 0; divide by a "
                    "non-zero constant or a fact declared positive, or multiply the other side instead "
                    "(`a > b * c` for `a / c > b`)"
                )
            return "number"
        if isinstance(node, ast.Compare):
            self._compare(node)
            return "bool"
        self.problems.append(f"`{ast.unparse(node)}` is not allowed (facts, constants, comparisons, `+ - * /`, and/or/not only)")
        return None

    def _nonzero(self, node: ast.AST) -> bool:
        """True when `node` can never be 0: a non-zero finite constant, a positive fact, or minus one of those."""
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self._nonzero(node.operand)
        if isinstance(node, ast.Constant):
            value = node.value
            return isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0 \
                and math.isfinite(value)
        name = self._dotted(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
        return name in self.facts and self.facts[name].positive

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


def _depth(tree: ast.AST) -> int:
    """Levels of the expression tree, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _check_when(when: str, facts: Mapping[str, FactDef]) -> list[str]:
    if len(when) > MAX_WHEN_CHARS:
        return [f"`when` is {len(when):,} characters long, over the limit of {MAX_WHEN_CHARS:,}; split the rule"]
    try:
        tree = ast.parse(when, mode="eval")
    except SyntaxError as exc:
        at = f" at column {exc.offset}" if exc.offset else ""
        return [f"`when` is not a valid expression ({exc.msg}{at})"]
    except (ValueError, RecursionError, MemoryError):  # NUL characters; nesting the parser itself cannot take
        return ["`when` cannot be parsed (nested too deeply, or it holds a NUL character)"]
    depth = _depth(tree)
    if depth > MAX_WHEN_DEPTH:
        return [f"`when` is nested {depth} levels deep, over the limit of {MAX_WHEN_DEPTH}; "
                "simplify it or split the rule"]
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
        elif spec:
            problems += _check_format_spec(name, spec[1:])
    return problems


def _check_format_spec(name: str, spec: str) -> list[str]:
    """A bounded number format that works for ints and floats alike (facts of type number are either)."""
    found = FORMAT_SPEC.fullmatch(spec)
    if found is None:
        return [f"`warn` format `{{{name}:{spec}}}` is not allowed: use a number format such as `,`, `,.0f` or "
                f"`.1f` (width up to {MAX_FORMAT_WIDTH}, precision up to {MAX_FORMAT_PRECISION})"]
    width, precision = int(found["width"] or 0), int(found["precision"] or 0)
    if width > MAX_FORMAT_WIDTH or precision > MAX_FORMAT_PRECISION:
        return [f"`warn` format `{{{name}:{spec}}}` is too wide: width at most {MAX_FORMAT_WIDTH}, precision at "
                f"most {MAX_FORMAT_PRECISION}"]
    try:
        format(1234, spec), format(1234.5, spec)
    except ValueError as exc:
        return [f"`warn` format `{{{name}:{spec}}}` does not suit every number ({exc}); use e.g. `,.0f`"]
    return []


# --- loading ----------------------------------------------------------------------------------------


def _yaml_problem(path: Path, text: str, exc: YamlSyntaxError) -> str:
    if exc.line is None:
        return f"{path.name}: invalid YAML: {exc.problem}"
    rule = "(before the first rule)"
    for line in text.splitlines()[: exc.line]:
        found = re.match(r"\s*-?\s*id:\s*([\w-]+)", line)
        if found:
            rule = found.group(1)
    return f"{path.name}:{exc.line}:{exc.column}: rule {rule}: invalid YAML: {exc.problem}"


def _read_file(path: Path) -> tuple[list[Any], str, list[str]]:
    """The raw rules of one file, its text (for the version digest) and its problems."""
    from advisor.core.yamlio import YamlSyntaxError, parse_yaml, read_text_file

    try:
        text = read_text_file(path, "rules file")
    except AdvisorError as exc:
        return [], "", [f"{path.name}: {exc.message}"]
    try:
        data = parse_yaml(text, f"rules file `{path.name}`")
    except YamlSyntaxError as exc:
        return [], text, [_yaml_problem(path, text, exc)]
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        return [], text, [f"{path.name}: must be a mapping with a `rules:` list"]
    return data["rules"], text, []


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
            elif not -MAX_SCORE_DELTA <= delta <= MAX_SCORE_DELTA:  # also false for NaN
                problems.append(f"{where}: `score` for `{target}` must be a finite number from "
                                f"{-MAX_SCORE_DELTA:g} to {MAX_SCORE_DELTA:g} (got {_shown(delta)})")
    return problems + _shape_problems(raw, where)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:23] + "…"


def _source_problem(source: str) -> str | None:
    """Why a source cannot be opened by a reader (a bare file name, an internal seed file), or None."""
    if INTERNAL_FILE.search(source):
        return (f"cites the internal file `{INTERNAL_FILE.search(source).group(0)}`; cite the article by its title "
                "(and URL where known), a paper by authors, year and arXiv id")
    rest = FILE_NAME.sub("", QUOTED.sub("", source))
    if not re.search(r"[A-Za-z0-9]", rest):
        return "is only a file name; cite the article by its title (and URL), a paper by authors, year and arXiv id"
    return None


def _shape_problems(raw: dict[str, Any], where: str) -> list[str]:
    """Types the checks above take for granted: text where text goes, `{option}` only with `each`."""
    problems = [f"{where}: `{k}` must be text" for k in ("id", "when", "rationale", "source", "severity")
                if raw.get(k) is not None and not isinstance(raw[k], (str, int, float))]
    if raw.get("warn") is not None and not isinstance(raw["warn"], str):
        problems.append(f"{where}: `warn` must be text")
    if isinstance(raw.get("source"), str) and (problem := _source_problem(raw["source"])):
        problems.append(f"{where}: `source` {problem}")
    if isinstance(raw.get("each"), list) and not all(isinstance(t, str) for t in raw["each"]):
        problems.append(f"{where}: `each` must list target names")
    if not raw.get("each"):
        score = raw.get("score")
        effects = [raw.get(k) for k in ("exclude", "stack", "note")] + [list(score) if isinstance(score, dict) else []]
        if any(isinstance(v, list) and "{option}" in v for v in effects):
            problems.append(f"{where}: `{{option}}` names a target only in a rule with `each`")
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
        raws, text, file_problems = _read_file(path)
        digest.update(path.name.encode() + b"\0" + text.encode("utf-8"))
        problems += file_problems
        for index, raw in enumerate(raws, start=1):
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(rule_id, (str, int)) or isinstance(rule_id, bool):
                rule_id = None  # a list or mapping id is reported by `_raw_problems`, not used as a key
            where = f"{path.name}: rule {rule_id or f'#{index}'}"
            raw_problems = _raw_problems(raw, where, targets)
            if rule_id in first_seen:
                raw_problems.append(f"{where}: duplicate id (first in {first_seen[rule_id]})")
            elif rule_id:
                first_seen[rule_id] = path.name
            problems += raw_problems
            if raw_problems:  # still report what is wrong with `when`: all problems at once
                when = raw.get("when") if isinstance(raw, dict) and not raw.get("each") else None
                if isinstance(when, str) and when.strip():
                    problems += [f"{where}: {p}" for p in dict.fromkeys(_check_when(when, facts))]
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
    unknown = sorted(skip - ruleset.ids)
    if len(unknown) == 1:
        raise UnknownNameError("rule", unknown[0], sorted(ruleset.ids), "advisor rules check")
    if unknown:  # every unknown id at once, each with its near matches
        from advisor.core.errors import InvalidInputError

        problems = []
        for rule_id in unknown:
            near = UnknownNameError("rule", rule_id, sorted(ruleset.ids)).suggestions
            problems.append(f"--skip-rule: unknown rule `{rule_id}`"
                            + (f" (did you mean {', '.join(f'`{n}`' for n in near)}?)" if near else ""))
        raise InvalidInputError(problems, hint="`advisor rules check` lists every rule id")
    evaluator = EvalWithCompoundTypes(names=_nested(values), functions={})
    fired = []
    for rule in ruleset.rules:
        if rule.id in skip:
            continue
        try:  # the load-time checks rule these out; a rule folder checked by an older advisor may not have been
            if not evaluator.eval(rule.when):
                continue
            fired.append(Firing(rule, _format(rule.warn, values) if rule.warn else ""))
        except (ArithmeticError, ValueError) as exc:
            raise RulesError([f"{rule.file}: rule {rule.id}: cannot be evaluated on these facts ({exc})"]) from None
    return fired

