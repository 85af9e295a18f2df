"""`advisor ask`: the questionnaire in the terminal (arrow-key menus, typed answers), then the report and the plan.

The questions, their defaults and their validation live in `advisor.app.questionnaire`; this module only reads keys
and draws. Keys come from the terminal in cbreak mode (termios), decoded into names (`up`, `down`, `enter`,
`space`, `backspace`, `clear` or one character); where termios is missing, typed lines stand in for keys, so
numbers and names still work. The questions are drawn on stderr, the report on stdout.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from advisor.app.console import user_errors
from advisor.core.errors import AdvisorError

if TYPE_CHECKING:
    from advisor.app.questionnaire import Choice, Question
    from advisor.core.models import Answers


app = typer.Typer()
ESCAPE_WAIT_S = 0.05  # a lone ESC, or the start of an arrow key's sequence split across reads
CONTROL_KEYS = {"\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace", "\x15": "clear", " ": "space"}
CSI_KEYS = {"A": "up", "B": "down"}
STYLES = {"input": "", "question": "1", "help": "2", "error": "31", "answer": "32", "pointer": "36"}
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


# --- keys -----------------------------------------------------------------------------------------


def split_key(text: str) -> tuple[str | None, str]:
    """The first key in `text` and the rest; (None, text) when an escape sequence is still incomplete.

    Raises:
        KeyboardInterrupt: Ctrl-C arrived as a byte (terminals with signals off).
        EOFError: Ctrl-D.
    """
    head = text[0]
    if head == "\x03":
        raise KeyboardInterrupt
    if head == "\x04":
        raise EOFError
    if text.startswith("\r\n"):
        return "enter", text[2:]
    if head != "\x1b":
        return CONTROL_KEYS.get(head, head if head.isprintable() else "ignore"), text[1:]
    if len(text) < 2 or (text[1] in "[O" and not any("@" <= c <= "~" for c in text[2:])):
        return None, text
    if text[1] not in "[O":
        return "ignore", text[1:]
    end = next(i for i, c in enumerate(text[2:], 2) if "@" <= c <= "~")
    return CSI_KEYS.get(text[end], "ignore"), text[end + 1:]


def _fd_keys(fd: int) -> Iterator[str]:
    """Key names read from a terminal in cbreak mode."""
    import codecs
    import select

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        key = None
        if pending:
            key, rest = split_key(pending)
        if key is None:
            waiting = bool(pending)
            if waiting and not select.select([fd], [], [], ESCAPE_WAIT_S)[0]:
                pending = ""  # an escape key pressed on its own
                continue
            data = os.read(fd, 64)
            if not data:
                raise EOFError
            pending += decoder.decode(data)
            continue
        pending = rest
        if key != "ignore":
            yield key


def _line_keys() -> Iterator[str]:
    """Without termios: each typed line becomes its characters followed by Enter."""
    while True:
        yield from (CONTROL_KEYS.get(c, c) for c in input())
        yield "enter"


@contextlib.contextmanager
def _terminal() -> Iterator[Iterator[str]]:
    fd = sys.stdin.fileno()
    try:
        import termios
        import tty
    except ImportError:  # Windows
        yield _line_keys()
        return
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd, termios.TCSANOW)  # TCSANOW keeps keys typed ahead
    try:
        yield _fd_keys(fd)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


# --- drawing --------------------------------------------------------------------------------------


@dataclass
class Screen:
    """Draws one question's block on a terminal, redrawing it in place after every key."""

    out: TextIO
    color: bool = False
    width: int | None = None  # None: the terminal's width at each draw
    _height: int = 0

    def draw(self, lines: list[tuple[str, str]], final: bool = False) -> None:
        """Replace the block drawn last with `lines` of (style, text); `final` leaves it on screen for good."""
        from advisor.app.render.safe import one_line

        # Writing in the last column would wrap the line; a terminal may report 0 or 1 columns (a tiny pane).
        columns = max(1, (self.width or _columns(self.out)) - 1)
        # Defaults from `--from` and typed text are data: their control characters are shown, not obeyed.
        rows = [(style, row) for style, text in lines for row in _fit(style, one_line(text), columns)]
        up = f"\x1b[{self._height - 1}A" if self._height > 1 else ""
        erase = f"{up}\r\x1b[J" if self._height else ""
        self.out.write(erase + "\n".join(self._paint(style, text) for style, text in rows))
        self._height = len(rows)
        if final:
            self.out.write("\n")
            self._height = 0
        self.out.flush()

    def say(self, text: str, style: str = "") -> None:
        """Print a line between questions."""
        self.draw([(style, text)], final=True)

    def _paint(self, style: str, text: str) -> str:
        return f"\x1b[{STYLES[style]}m{text}\x1b[0m" if self.color and STYLES.get(style) and text else text


def _columns(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):  # not a terminal (tests): COLUMNS, else 80
        return shutil.get_terminal_size().columns


def _fit(style: str, text: str, columns: int) -> list[str]:
    """Rows of at most `columns` characters: menu rows are cut, the input row is folded, prose is wrapped."""
    columns = max(1, columns)
    if len(text) <= columns:
        return [text]
    if style in ("", "pointer"):
        return [text[: columns - 3] + "..." if columns > 3 else text[:columns]]
    if style == "input":
        return [text[i: i + columns] for i in range(0, len(text), columns)]
    indent = " " * min(len(text) - len(text.lstrip()) + 2, columns // 2)  # leave room for words
    return textwrap.wrap(text, columns, subsequent_indent=indent, break_on_hyphens=False) or [""]


@dataclass
class _State:
    choices: tuple[Choice, ...] = ()
    cursor: int = 0
    selected: set[Any] = field(default_factory=set)
    buffer: str = ""
    error: str = ""


def _menu_lines(q: Question, state: _State) -> list[tuple[str, str]]:
    pad = max(len(c.name) for c in state.choices)
    lines = []
    for i, choice in enumerate(state.choices):
        here = i == state.cursor
        box = ("[x] " if choice.value in state.selected else "[ ] ") if q.kind == "multi" else ""
        text = f"  {'>' if here else ' '} {box}{i + 1}. {choice.name.ljust(pad)}  {choice.label}".rstrip()
        lines.append(("pointer" if here else "", text))
    return lines


def _lines(q: Question, state: _State, number: int | None, default: Any) -> list[tuple[str, str]]:
    from advisor.app.questionnaire import format_value, help_for

    shown = format_value(q, default) if q.kind not in ("choice", "multi") else ""
    head = f"? {f'({number}) ' if number else ''}{q.text}{f' [{shown}]' if shown else ''}"
    help_text = help_for(q)
    lines = [("question", head)]
    if help_text:
        lines.append(("help", f"    {help_text}"))
    if q.kind in ("choice", "multi"):
        lines += _menu_lines(q, state)
        toggle = "space toggles, Enter confirms" if q.kind == "multi" else "Enter chooses"
        prompt = f"  ↑/↓ move, {toggle}; or type {'numbers' if q.kind == 'multi' else 'a number'}: "
    else:
        prompt = "  > "
    if state.error:
        lines.append(("error", f"    ! {state.error}"))
    return [*lines, ("input", prompt + state.buffer)]


def _edit(q: Question, state: _State, key: str) -> None:
    n_choices = len(state.choices)
    if key in ("up", "down") and n_choices:
        state.cursor = (state.cursor + (1 if key == "down" else -1)) % n_choices
    elif key == "space" and q.kind == "multi" and not state.buffer:
        state.selected ^= {state.choices[state.cursor].value}
    elif key == "backspace":
        state.buffer = state.buffer[:-1]
    elif key == "clear":
        state.buffer = ""
    elif len(key) == 1 or key == "space":
        state.buffer += " " if key == "space" else key
        if state.buffer.isdigit() and 1 <= int(state.buffer) <= n_choices:
            state.cursor = int(state.buffer) - 1


class GoBack(Exception):  # noqa: N818 - a signal, not an error
    """`back` was typed: the interview asks the previous question again."""


def _submit(q: Question, state: _State, default: Any) -> Any:
    from advisor.app.questionnaire import parse_answer, parse_empty

    if state.buffer.strip():
        return parse_answer(q, state.buffer)
    if q.kind == "choice":
        return state.choices[state.cursor].value
    if q.kind == "multi" and state.selected:
        return [c.value for c in state.choices if c.value in state.selected]
    return parse_empty(q, None if q.kind == "multi" else default)


def ask_question(q: Question, default: Any, keys: Iterator[str], screen: Screen, number: int | None = None,
                 submit: Callable[[_State], Any] | None = None, can_go_back: bool = False) -> Any:
    """Ask one question until its answer parses; an invalid answer is asked again with the error shown.

    Raises:
        GoBack: `back` was typed and `can_go_back` is set.
    """
    from advisor.app.questionnaire import BACK_WORDS, AnswerError, choices_of, format_value

    choices = choices_of(q)
    values = [c.value for c in choices]
    state = _State(choices, cursor=values.index(default) if q.kind == "choice" and default in values else 0,
                   selected=set(default or ()) if q.kind == "multi" else set())
    while True:
        screen.draw(_lines(q, state, number, default))
        key = next(keys)
        if key != "enter":
            _edit(q, state, key)
            continue
        if can_go_back and state.buffer.strip().lower() in BACK_WORDS:
            screen.draw([("help", f"{f'({number}) ' if number else ''}{q.text}  (back)")], final=True)
            raise GoBack
        try:
            value = submit(state) if submit else _submit(q, state, default)
        except AnswerError as exc:
            state.error, state.buffer = str(exc), ""
            continue
        shown = format_value(q, value) if submit is None else ("yes" if value else "no")
        screen.draw([("answer", f"{f'({number}) ' if number else ''}{q.text}  {shown or 'none'}")], final=True)
        return value


def confirm(text: str, keys: Iterator[str], screen: Screen, default: bool = False) -> bool:
    """A y/N question (Enter takes `default`)."""
    from advisor.app.questionnaire import Question, parse_yes_no

    question = Question("confirm", f"{text} ({'Y/n' if default else 'y/N'})", "text")
    return ask_question(question, None, keys, screen, submit=lambda state: parse_yes_no(state.buffer, default))


def interview(keys: Iterator[str], screen: Screen, previous: Answers | None = None) -> Answers:
    """Ask every question that applies, in order, and return the validated answers.

    Args:
        keys: Key names (`up`, `down`, `enter`, `space`, `backspace`, `clear`, or one character).
        screen: Where the questions are drawn.
        previous: Answers whose values become the defaults (`--from`).

    Raises:
        KeyboardInterrupt, EOFError: The user quit; nothing has been written.
    """
    from advisor.app.questionnaire import build_answers, default_for, defaults_from, next_question

    defaults = defaults_from(previous)
    values: dict[str, Any] = {}
    order: list[str] = []  # the questions answered, in order: `back` pops the last one
    while (question := next_question(values)) is not None:
        try:
            values[question.key] = ask_question(question, default_for(question, defaults), keys, screen,
                                                len(values) + 1, can_go_back=bool(order))
        except GoBack:
            key = order.pop()
            defaults = {**defaults, key: values.pop(key)}  # Enter keeps the answer given before
            continue
        order.append(question.key)
    return build_answers(values)


# --- the command ----------------------------------------------------------------------------------

INTRO = ("A few questions about your task: ↑/↓ and Enter, or type a number; `back` edits the previous answer; "
         "Ctrl-C quits without writing anything")


@dataclass
class _Outcome:
    written: Path | None = None


@app.command()
def ask(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Answers file to write (YAML); plan.yaml goes beside it", dir_okay=False)
    ] = Path("answers.yaml"),
    from_file: Annotated[
        Path | None, typer.Option("--from", help="Answers file whose values become the defaults", dir_okay=False)
    ] = None,
) -> None:
    """Answer questions in the terminal: writes answers.yaml, shows the recommendation, offers the plan and the run."""
    outcome = _Outcome()
    with user_errors(), _quitting(outcome):
        previous = _prepare(output, from_file)
        with _terminal() as keys:
            screen = Screen(sys.stderr, color=not os.environ.get("NO_COLOR"))
            screen.say(INTRO, "help")
            _check_overwrite(output, from_file, keys, screen)
            answers = interview(keys, screen, previous)
            answers = _save_answers(answers, output, screen)
            outcome.written = output
            wants_run = _report_and_offer(answers, output, keys, screen)
        if wants_run:
            _run(output)


@contextlib.contextmanager
def _quitting(outcome: _Outcome) -> Iterator[None]:
    """Ctrl-C: one line and exit 130; end of input: one line and exit 1. Never a traceback."""
    try:
        yield
    except KeyboardInterrupt:
        kept = f"answers are in {outcome.written}" if outcome.written else "nothing written"
        typer.echo(f"\naborted: {kept}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except EOFError:
        kept = f"answers are in {outcome.written}" if outcome.written else "nothing written"
        typer.echo(f"\nerror: input ended before the questions were done; {kept}", err=True)
        raise typer.Exit(1) from None


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _prepare(output: Path, from_file: Path | None) -> Answers | None:
    from advisor.core.recommend import load_answers

    if not _interactive():
        raise AdvisorError(
            "advisor ask needs an interactive terminal",
            "without one, write an answers file by hand (or edit one an earlier `advisor ask` wrote, which "
            "`advisor ask --from answers.yaml` reopens) and run `advisor recommend answers.yaml`",
        )
    from advisor.app.outputs import check_output_file

    check_output_file(output, "-o")  # a missing or read-only folder is found before the questions, not after
    return load_answers(from_file) if from_file else None


def _check_overwrite(output: Path, from_file: Path | None, keys: Iterator[str], screen: Screen) -> None:
    reopening = from_file is not None and from_file.resolve() == output.resolve()
    if output.exists() and not reopening and not confirm(f"{output} exists: replace it at the end?", keys, screen):
        raise AdvisorError(f"`{output}` exists; nothing written",
                           f"give another file with `-o`, or start from it with `--from {output}`")


def _save_answers(answers: Answers, output: Path, screen: Screen) -> Answers:
    """Write the answers file atomically (a temporary file beside it, then a rename); returns what was written."""
    from advisor.app.questionnaire import answers_yaml, relocate_paths

    answers = relocate_paths(answers, output.parent, Path.cwd())
    from advisor.core.fileio import write_text_atomic

    try:
        write_text_atomic(output, answers_yaml(answers))
    except OSError as exc:
        raise AdvisorError(f"cannot write `{output}`: {exc.strerror or exc}") from None
    screen.say(f"answers written to {output}", "answer")
    return answers


def _report_and_offer(answers: Answers, output: Path, keys: Iterator[str], screen: Screen) -> bool:
    """Show the recommendation, offer to write the plan; True when the user wants `advisor run` started."""
    from advisor.app.render import terminal as report
    from advisor.core.planning import build_plan, save_plan
    from advisor.core.recommend import recommend

    rec = recommend(answers)
    report.print_recommendation(rec)
    plan_path = output.with_name("plan.yaml")
    replaces = " (replaces the one there)" if plan_path.exists() else ""
    if confirm(f"Write the plan to {plan_path}{replaces}?", keys, screen):
        save_plan(build_plan(rec, answers), plan_path)
        screen.say(f"plan for {' + '.join(rec.stack)} written to {plan_path}", "answer")
    command = f"advisor run {shlex.quote(str(output))}"
    if confirm("Run it now?", keys, screen):
        return True
    screen.say(f"run it later with: {command}", "help")
    return False


def _run(output: Path) -> None:
    import subprocess

    raise typer.Exit(subprocess.call([sys.executable, "-m", "advisor", "run", str(output)]))
