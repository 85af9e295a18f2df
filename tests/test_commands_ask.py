"""`advisor ask`: keys, drawing, whole sessions with scripted keys, the no-terminal error, and a real tmux terminal."""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from io import StringIO
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advisor.app.cli import _register, app
from advisor.app.commands import ask as ask_module
from advisor.app.commands.ask import Screen, _fd_keys, ask_question, interview, split_key
from advisor.app.questionnaire import QUESTIONS
from advisor.core.models import Answers

_register()
BY_KEY = {q.key: q for q in QUESTIONS}


def typed(text: str = "") -> list[str]:
    """Keys for typing `text` then Enter."""
    return [*("space" if c == " " else c for c in text), "enter"]


def keys_of(*steps: str | Iterable[str]) -> Iterator[str]:
    """A terminal that plays `steps` (a string is typed then Enter; a list is key names) and then ends."""
    for step in steps:
        yield from typed(step) if isinstance(step, str) else step
    raise EOFError


STYLE_ONLY = (
    ["down", "space", "enter"],  # goal: style_format
    "invoices to JSON",  # task
    "",  # examples file: none
    "-5", "300",  # n_examples: an invalid value, then a valid one
    "", "", "",  # data quality, example size, preference pairs
    "", "", "",  # model access, base model, API model
    "",  # own GPUs: no
    "", "200", "1000", "", "", "",  # renting, budget, requests, latency, prompt, output
    "", "", "", "",  # languages, task type, tried, where the examples come from
    "", "", "", "",  # alignment to keep, tasks on one base, data residency, deployment
    "",  # a teacher that does the task: none
)


@pytest.fixture
def fake_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    """Run the command as if on a terminal whose keys are the ones passed in; cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ask_module, "_interactive", lambda: True)

    def play(keys: Iterator[str], *args: str):  # noqa: ANN202
        monkeypatch.setattr(ask_module, "_terminal", lambda: contextlib.nullcontext(keys))
        return CliRunner().invoke(app, ["ask", *args])

    return play


# --- the command --------------------------------------------------------------------------------


def test_without_a_terminal_it_fails_at_once_with_a_hint() -> None:
    result = CliRunner().invoke(app, ["ask", "-o", "never.yaml"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: advisor ask needs an interactive terminal\n")
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.output
    assert "advisor recommend answers.yaml" in result.stderr and "--from" in result.stderr
    assert result.stdout == "" and not Path("never.yaml").exists()


def test_a_session_writes_answers_shows_the_report_and_the_plan(fake_terminal, tmp_path: Path) -> None:  # noqa: ANN001
    result = fake_terminal(keys_of(*STYLE_ONLY, "y", ""))
    assert result.exit_code == 0, result.output
    assert "must be 0 or more (got -5)" in result.stderr
    answers = Answers.model_validate(yaml.safe_load((tmp_path / "answers.yaml").read_text()))
    assert answers.goal == ["style_format"] and answers.n_examples == 300 and answers.budget_usd == 200
    assert answers.gpu is None and answers.task == "invoices to JSON"
    assert "Recommendation:" in result.stdout
    assert (tmp_path / "plan.yaml").is_file() and "written to plan.yaml" in result.stderr
    assert "run it later with: advisor run answers.yaml" in result.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_the_run_is_offered_and_started_once_it_exists(fake_terminal, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    started = []
    monkeypatch.setattr(ask_module, "_run", started.append)
    result = fake_terminal(keys_of(*STYLE_ONLY, "", "y"), "-o", "mine.yaml")  # no plan; run: yes
    assert result.exit_code == 0, result.output
    assert started == [Path("mine.yaml")] and not Path("plan.yaml").exists()


def test_ctrl_c_exits_130_and_writes_nothing(fake_terminal, tmp_path: Path) -> None:  # noqa: ANN001
    def interrupted() -> Iterator[str]:
        yield from ["space", "enter"]
        raise KeyboardInterrupt

    result = fake_terminal(interrupted())
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == "aborted: nothing written"
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


def test_end_of_input_exits_1_and_writes_nothing(fake_terminal, tmp_path: Path) -> None:  # noqa: ANN001
    result = fake_terminal(keys_of(["space", "enter"], "a task"))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: input ended before the questions were done")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_unless_replacing_is_confirmed(fake_terminal, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "answers.yaml").write_text("goal: [knowledge]\n")
    result = fake_terminal(keys_of(""))  # Enter: no
    assert result.exit_code == 2 and "error: `answers.yaml` exists; nothing written" in result.stderr
    assert (tmp_path / "answers.yaml").read_text() == "goal: [knowledge]\n"


def test_from_reopens_a_file_and_enter_keeps_every_answer(fake_terminal, tmp_path: Path) -> None:  # noqa: ANN001
    earlier = Answers(goal=["knowledge", "style_format"], task="faq", n_documents=40, freshness="daily",
                      gpu={"type": "l4", "count": 2}, budget_usd=50, requests_per_day=1000)
    (tmp_path / "answers.yaml").write_text(yaml.safe_dump(earlier.model_dump(mode="json")))
    result = fake_terminal(itertools.repeat("enter"), "--from", "answers.yaml")
    assert result.exit_code == 0, result.output
    assert Answers.model_validate(yaml.safe_load((tmp_path / "answers.yaml").read_text())) == earlier
    assert not (tmp_path / "plan.yaml").exists()  # the plan offer defaults to no


def test_a_failed_write_leaves_no_file(fake_terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    def no_space(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ask_module.os, "replace", no_space)
    result = fake_terminal(keys_of(*STYLE_ONLY))
    assert result.exit_code == 2 and "error: cannot write `answers.yaml`: No space left on device" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_data_paths_become_absolute_when_the_file_goes_elsewhere(fake_terminal, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "a.md").write_text("# A\nfacts\n")
    (tmp_path / "out").mkdir()
    knowledge = (["space", "enter"], "", "", "", "", "kb", "", "", "", "", "", "", "", "", "", "", "", "", "",
                 "", "", "", "", "", "", "", "", "")  # languages, task type, tried, alignment, tasks, residency,
    # deployment, teacher, domain the base lacks
    result = fake_terminal(keys_of(*knowledge, "", ""), "-o", "out/answers.yaml")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load((tmp_path / "out" / "answers.yaml").read_text())
    assert written["corpus_path"] == str(tmp_path / "kb")


# --- keys and drawing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "rest"),
    [
        ("\x1b[Ax", "up", "x"),
        ("\x1bOB", "down", ""),
        ("\x1b[1;5C", "ignore", ""),  # ctrl-right: not used
        ("\x1b[", None, "\x1b["),  # incomplete: wait for more
        ("\x1b", None, "\x1b"),
        ("\x1bx", "ignore", "x"),  # alt-x
        ("\r\nx", "enter", "x"),
        ("\n", "enter", ""),
        ("\x7f", "backspace", ""),
        ("\x15", "clear", ""),
        (" ", "space", ""),
        ("é", "é", ""),
        ("\x07", "ignore", ""),
    ],
)
def test_split_key(text: str, key: str | None, rest: str) -> None:
    assert split_key(text) == (key, rest)


@pytest.mark.parametrize(("byte", "error"), [("\x03", KeyboardInterrupt), ("\x04", EOFError)])
def test_ctrl_c_and_ctrl_d_bytes(byte: str, error: type[BaseException]) -> None:
    with pytest.raises(error):
        split_key(byte)


def test_keys_from_a_file_descriptor() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, "\x1b[Aé \r\x1b[B".encode())
    os.close(write_end)
    keys = _fd_keys(read_end)
    try:
        assert [next(keys) for _ in range(5)] == ["up", "é", "space", "enter", "down"]
        with pytest.raises(EOFError):
            next(keys)
    finally:
        os.close(read_end)


def test_the_screen_redraws_a_block_in_place() -> None:
    out = StringIO()
    screen = Screen(out, width=40)
    screen.draw([("question", "? one"), ("help", "  help"), ("input", "  > ")])
    screen.draw([("question", "? one"), ("input", "  > 3")])
    assert out.getvalue() == "? one\n  help\n  > \x1b[2A\r\x1b[J? one\n  > 3"
    screen.draw([("answer", "one  3")], final=True)
    assert out.getvalue().endswith("\x1b[1A\r\x1b[Jone  3\n")
    screen.say("x" * 50, "help")  # prose wraps at the width instead of letting the terminal wrap it
    assert out.getvalue().endswith("x" * 39 + "\n  " + "x" * 11 + "\n")


def test_colour_only_when_asked() -> None:
    out = StringIO()
    Screen(out, color=True, width=40).say("done", "answer")
    assert out.getvalue() == "\x1b[32mdone\x1b[0m\n"


@pytest.mark.parametrize(
    ("key", "keys", "expected"),
    [
        ("model_access", ["down", "down", "enter"], "closed_api_no_tuning"),
        ("model_access", ["up", "enter"], "closed_api_no_tuning"),  # wraps around
        ("model_access", ["2", "enter"], "closed_api_with_tuning"),
        ("model_access", ["9", "enter", "1", "enter"], "open_weights"),  # out of range, asked again
        ("goal", ["space", "down", "down", "space", "enter"], ["knowledge", "reasoning"]),
        ("goal", ["space", "space", "enter", "4", "enter"], ["safety_alignment"]),  # none chosen, asked again
        ("goal", ["1", "space", "2", "enter"], ["knowledge", "style_format"]),  # typed numbers
        ("n_examples", ["1", "2", "x", "backspace", "enter"], 12),
        ("n_examples", ["9", "clear", "7", "enter"], 7),
        ("n_examples", ["enter"], 0),  # the default
    ],
)
def test_ask_question_keys(key: str, keys: list[str], expected: object) -> None:
    out = StringIO()
    q = BY_KEY[key]
    assert ask_question(q, q.default, iter(keys), Screen(out, width=100), number=1) == expected


def test_an_error_is_shown_under_the_question_and_cleared_by_a_good_answer() -> None:
    out = StringIO()
    value = ask_question(BY_KEY["gpu_type"], None, keys_of("a100-80", "a100"), Screen(out, width=100), number=3)
    assert value == "a100-80gb"
    assert "! unknown GPU `a100-80`; did you mean a100-80gb" in out.getvalue()
    assert out.getvalue().endswith("(3) Which GPU?  a100-80gb\n")


def test_back_edits_the_previous_answer_and_keeps_it_as_the_default() -> None:
    out = StringIO()
    steps = list(STYLE_ONLY)
    # At the examples-file question, go back to the task and retype it; Enter on the next keeps nothing else.
    steps[2:2] = ["back", "tickets to JSON"]
    answers = interview(keys_of(*steps), Screen(out, width=100))
    assert answers.task == "tickets to JSON"
    assert "Describe the task in one line  (back)" not in out.getvalue()
    assert "Examples file (JSON Lines)? Enter: none  (back)" in out.getvalue()
    # `back` on the very first question is just an answer that does not parse.
    with pytest.raises(EOFError):
        interview(keys_of("back"), Screen(StringIO(), width=100))


def test_new_inputs_are_asked_and_written() -> None:
    steps = list(STYLE_ONLY)
    steps[-9:] = ["ja, en", "3", "2", "", "synthetic", "y", "", "y", "edge"]
    answers = interview(keys_of(*steps, "6", "gpt-5.4", "y"), Screen(StringIO(), width=100))
    assert answers.teacher_model == "gpt-5.4" and answers.teacher_does_task
    assert answers.languages == ["ja", "en"] and answers.task_type == "classification"
    assert answers.tried == ["few_shot"] and answers.example_source == "synthetic"
    assert answers.keep_alignment and answers.no_external_api
    assert answers.deployment == "edge" and answers.edge_memory_gb == 6


def test_how_far_a_tried_method_got_is_asked_written_and_read_back() -> None:
    from advisor.app.questionnaire import answers_yaml, defaults_from

    steps = list(STYLE_ONLY)
    steps[-7:-6] = ["2, 3", "80%", "", "0.9"]  # tried: few-shot (80% of the target) and rag (skipped, recall 0.9)
    answers = interview(keys_of(*steps), Screen(StringIO(), width=100))
    assert [a.model_dump(exclude_none=True) for a in answers.attempts().values()] == [
        {"method": "few_shot", "reached": 0.8}, {"method": "rag", "recall": 0.9}]
    written = yaml.safe_load(answers_yaml(answers))
    assert written["tried"] == [{"method": "few_shot", "reached": 0.8}, {"method": "rag", "recall": 0.9}]
    again = defaults_from(Answers.model_validate(written))
    assert again["tried"] == ["few_shot", "rag"] and again["tried_reached_few_shot"] == 0.8
    skipped = list(STYLE_ONLY)
    skipped[-7:-6] = ["2", ""]  # Enter: it failed, written as the plain name
    assert interview(keys_of(*skipped), Screen(StringIO(), width=100)).tried == ["few_shot"]


def test_interview_asks_only_what_applies() -> None:
    out = StringIO()
    answers = interview(keys_of(*STYLE_ONLY), Screen(out, width=100))
    assert answers.goal == ["style_format"] and answers.n_examples == 300
    assert "Folder of documents" not in out.getvalue() and "Which GPU?" not in out.getvalue()


# --- a real terminal -----------------------------------------------------------------------------

TMUX_DEADLINE_S = 30.0


class _Tmux:
    """A detached tmux session on a private socket, driven by send-keys and read with capture-pane."""

    def __init__(self, socket: str, deadline: float) -> None:
        self.base = ["tmux", "-L", socket, "-f", "/dev/null"]
        self.deadline = deadline

    def __call__(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-J", "-S", "-")

    def wait_for(self, *texts: str) -> str:
        """Poll the pane until one of `texts` shows; returns it."""
        while not (seen := [t for t in texts if t in (screen := self.screen())]):
            if time.monotonic() > self.deadline:
                pytest.fail(f"timed out waiting for {texts}; the screen:\n{screen}")
            time.sleep(0.05)
        return seen[0]

    def type(self, text: str) -> None:
        self("send-keys", "-l", "--", text)
        self("send-keys", "Enter")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[_Tmux]:
    """`advisor ask -o answers.yaml` started in tmp_path in a 100×40 tmux pane; the shell then reports the exit
    status and whether the terminal's settings came back as they were."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    session = _Tmux(f"advisor-ask-test-{os.getpid()}-{tmp_path.name}", time.monotonic() + TMUX_DEADLINE_S)
    command = (f"cd {shlex.quote(str(tmp_path))} && saved=$(stty -g); NO_COLOR=1 {shlex.quote(sys.executable)} "
               f"-m advisor ask -o answers.yaml; echo exit=$?; [ \"$saved\" = \"$(stty -g)\" ] && echo tty=restored; "
               "sleep 60")
    session("new-session", "-d", "-x", "100", "-y", "40", command)
    try:
        yield session
    finally:
        subprocess.run([*session.base, "kill-server"], capture_output=True)


@pytest.mark.slow
def test_a_real_terminal_in_tmux(tmux: _Tmux, tmp_path: Path) -> None:
    _drive(tmux)
    screen = tmux.screen()
    assert "exit=0" in screen and "tty=restored" in screen, screen
    answers = Answers.model_validate(yaml.safe_load((tmp_path / "answers.yaml").read_text()))
    assert answers.goal == ["style_format", "reasoning"] and answers.n_examples == 300
    assert answers.data_quality == "noisy" and answers.base_model == "llama-3.1-8b"
    assert answers.gpu is not None and (answers.gpu.type, answers.gpu.count) == ("rtx-4090", 2)
    assert answers.requests_per_day == 1000 and (tmp_path / "plan.yaml").is_file()


@pytest.mark.slow
def test_ctrl_c_in_a_real_terminal(tmux: _Tmux, tmp_path: Path) -> None:
    tmux.wait_for("What must the model do better?")
    tmux("send-keys", "Space", "Enter")
    tmux.wait_for("Describe the task")
    tmux("send-keys", "-l", "half a tas")
    tmux("send-keys", "C-c")
    tmux.wait_for("tty=restored")
    screen = tmux.screen()
    assert "aborted: nothing written\nexit=130" in screen and "Traceback" not in screen, screen
    assert list(tmp_path.iterdir()) == []


def _drive(tmux: _Tmux) -> None:
    tmux.wait_for("What must the model do better?")
    tmux("send-keys", "Down", "Space", "Down", "Space", "Enter")
    tmux.wait_for("Describe the task")
    tmux.type("Invoices to JSON")
    tmux.wait_for("Examples file")
    tmux("send-keys", "Enter")
    tmux.wait_for("How many input")
    tmux.type("-5")
    tmux.wait_for("must be 0 or more (got -5)")
    tmux.type("300")
    tmux.wait_for("checked and consistent")
    tmux("send-keys", "Down", "Enter")
    for question in ("tokens is one example", "preference pairs", "Which kind of model"):
        tmux.wait_for(question)
        tmux("send-keys", "Enter")
    tmux.wait_for("Which open-weight model")
    tmux.type("lama-3.1-8")
    tmux.wait_for("did you mean llama-3.1-8b")
    tmux.type("llama-3.1-8b")
    tmux.wait_for("Which API model")
    tmux("send-keys", "Enter")
    tmux.wait_for("Do you own")
    tmux.type("1")
    tmux.wait_for("Which GPU?")
    tmux.type("rtx-409")
    tmux.wait_for("unknown GPU `rtx-409`")
    tmux.type("rtx-4090")
    tmux.wait_for("How many of them")
    tmux.type("2")
    for question, text in (("May renting", ""), ("One-time budget", "200"), ("How many requests", "1k"),
                           ("p95 latency", ""), ("today's prompt", ""), ("typical answer", ""),
                           ("Which languages", "en, de"), ("What kind of output", ""), ("already tried", ""),
                           ("Where do the examples", ""), ("survives filtering", "0.8"), ("refusals", ""),
                           ("separate tasks", ""), ("data residency", ""), ("Where will the model run", ""), ("distil into", ""),
                           ("Write the plan", "y")):
        tmux.wait_for(question)
        tmux.type(text) if text else tmux("send-keys", "Enter")
    if tmux.wait_for("Run it now?", "exit=") != "exit=":  # once `advisor run` exists, it is offered: decline
        tmux.type("n")
        tmux.wait_for("exit=")


HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "faiss", "sentence_transformers")
LIGHT_PROBE = """
import contextlib, itertools, json, sys
from typer.testing import CliRunner
from advisor.app.cli import _register, app
_register()
from advisor.app.commands import ask
ask._interactive = lambda: True
keys = itertools.chain(["space", "enter"], itertools.repeat("enter"))
ask._terminal = lambda: contextlib.nullcontext(keys)
result = CliRunner().invoke(app, ["ask", "-o", sys.argv[1]])
assert result.exit_code == 0, result.output
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])))
"""


def test_a_whole_session_imports_nothing_heavy(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", LIGHT_PROBE, str(tmp_path / "answers.yaml"), *HEAVY],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "answers.yaml").is_file()
