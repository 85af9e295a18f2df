"""Test-wide settings: offline, no user state, a `--update-golden` switch."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["NO_COLOR"] = "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ from the current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("ADVISOR_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


# What each optional extra of pyproject.toml brings, by the modules a test needs from it.
EXTRA_MODULES = {"train": ("torch", "transformers", "peft", "trl", "datasets"),
                 "rag": ("numpy", "faiss", "sentence_transformers")}


def _missing(extra: str) -> list[str]:
    import importlib.util

    return [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip (not fail) tests whose extra is not installed (`@pytest.mark.extras("train")`), and GPU tests
    without CUDA: the unmarked tests pass with the core dependencies alone."""
    for item in items:
        for marker in item.iter_markers("extras"):
            missing = [m for extra in marker.args for m in _missing(extra)]
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"needs the {'/'.join(marker.args)} extra ({missing[0]})"))
    if not any("gpu" in item.keywords for item in items):
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def assert_user_error(result, *fragments: str, preamble: bool = False) -> None:
    """The CLI contract for bad input: exit 2, one `error:` line on stderr, no traceback, nothing on stdout.

    Args:
        result: A `typer.testing.CliRunner` result.
        fragments: Text the error must contain.
        preamble: The command may print progress to stderr before the error (e.g. `advisor run`'s plan).
    """
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("error:") == 1, result.stderr
    if not preamble:
        assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert result.stdout == ""


def kill_when_ready(cmd: list[str], ready, *, env: dict | None = None, cwd=None, timeout: float = 240.0,
                    poll: float = 0.05) -> None:
    """Start `cmd` in a session of its own and SIGKILL its whole process group once `ready()` is true.

    Fails when the command ends first or `timeout` seconds pass (generous: a loaded CI machine imports slowly;
    not a timing assertion). The group is killed on failure too, so no run outlives its test.
    """
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env, cwd=cwd)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before it could be interrupted"
            assert time.monotonic() < deadline, f"nothing to interrupt within {timeout:g} s"
            time.sleep(poll)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
