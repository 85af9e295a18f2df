"""The three layers and their contract, read from every import in the code (function-level ones included).

    advisor/core   pure: never imports advisor.app or backends (nor torch & co. at module level: test_startup)
    backends/      import advisor.core only, never advisor.app; one backend imports another only through
                   backends.common (shared helpers), backends.base (the interfaces) or the registry
    advisor/app    may import both
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_BACKEND_MODULES = ("backends.base", "backends.common")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module]) if module else ".".join(base)
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names if module in ("backends",)]
    return found


def _files(folder: str) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}"
    return files


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_core_imports_neither_the_app_nor_the_backends() -> None:
    bad = [f"{p.relative_to(ROOT)}:{line} imports {m}" for p in _files("advisor/core") for line, m in _imports(p)
           if _under(m, "advisor.app") or _under(m, "backends")]
    assert not bad, "\n".join(bad)


def test_backends_import_core_only_and_each_other_through_common() -> None:
    bad = []
    for path in _files("backends"):
        parts = path.relative_to(ROOT).parts
        own = f"backends.{parts[1]}" if len(parts) > 2 else None
        for line, module in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            if _under(module, "advisor.app") or module in ("advisor.cli", "advisor.runner"):
                bad.append(where)
            elif _under(module, "backends") and module not in ("backends", "backends.REGISTRY", "backends.backend_for"):
                other = ".".join(module.split(".")[:2])
                if other != own and other not in SHARED_BACKEND_MODULES and own is not None:
                    bad.append(where)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("kind", ["train", "rag", "prompt"])
def test_every_registered_backend_is_a_complete_descriptor(kind: str) -> None:
    from advisor.core.models.plan import STEP_MODELS
    from backends import REGISTRY, backend_for

    backend = backend_for(kind)
    assert backend.kind == kind and kind in REGISTRY
    assert backend.step_model is STEP_MODELS[kind]
    assert all(callable(f) for f in (backend.label, backend.describe, backend.check, backend.run, backend.report))


def test_no_code_outside_the_backends_names_a_step_kind() -> None:
    """Runner, CLI preview and pre-check and the closing report ask the registry; they never branch on a kind."""
    import re

    from advisor.core.models.plan import STEP_MODELS

    kinds = "|".join(STEP_MODELS)
    pattern = re.compile(rf"""kind\W*\s*(==|!=|in)\s*\(?["']({kinds})["']|isinstance\(\w+, ({'|'.join(
        m.__name__ for m in STEP_MODELS.values())})\)""")
    bad = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in _files("advisor/app")
           for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if pattern.search(line)]
    assert not bad, "\n".join(bad)


def _runtime_imports(path: Path) -> set[str]:
    """Modules a file imports when it runs (module- or function-level), `if TYPE_CHECKING:` blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(child) for child in ast.walk(node)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_import_cycles_between_modules() -> None:
    """cli ↔ commands, report ↔ report_recommend, runner ↔ run report: each such pair imported the other."""
    modules = {}
    for folder in ("advisor", "backends"):
        for path in _files(folder):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    graph = {name: {m for m in _runtime_imports(path) if m in modules and m != name} for name, path in modules.items()}
    cycles = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if a in graph.get(b, ())
                     and not (a.startswith(b + ".") or b.startswith(a + "."))})
    assert not cycles, cycles
