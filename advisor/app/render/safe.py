"""Text from users, files and documents made safe to show: on a terminal, in Markdown, in one line.

A task line, a plan name, a model path or a retrieved chunk is data, and may hold anything. On a terminal,
an escape sequence in it could retitle the window (OSC `\\x1b]0;...\\x07`), clear the screen, recolour
everything after it or hide text; `\\r` overwrites what the line showed; bidirectional overrides reorder
what is read. In a Markdown report, raw `<script>` or `<img onerror=...>` passes through most renderers as
HTML, and `[text](javascript:...)` becomes a link. These functions make every such character visible and
inert instead of deleting it, so what the user gave can still be read (and fixed).
"""

from __future__ import annotations

import html
import re

__all__ = ["markdown_text", "one_line", "terminal_text"]

# C0 controls but tab and newline, DEL, C1 controls (U+0080-U+009F: U+009B alone starts a CSI sequence on
# some terminals), and the bidirectional embedding/override/isolate marks ("Trojan Source", CVE-2021-42574).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Markdown that could form a link, an image, a code span or break a table: escaped with a backslash.
_MARKDOWN = re.compile(r"([\\`\[\]|])")
_BREAKS = re.compile(r"\r\n|[\r\n\t]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: object) -> str:
    """`text` with every control character but newline and tab shown as `\\xNN` (ESC, BEL, CR, C1, bidi).

    Example:
        >>> terminal_text("ok\\x1b]0;pwned\\x07")
        'ok\\\\x1b]0;pwned\\\\x07'
    """
    return _UNSAFE.sub(_visible, str(text))


def one_line(text: object) -> str:
    """`terminal_text`, and newlines and tabs shown as `\\x0a`/`\\x09` too: for a table cell or a one-line field."""
    return _UNSAFE_LINE.sub(_visible, str(text))


def markdown_text(text: object) -> str:
    """`text` for a Markdown line or table cell: HTML escaped, link/code/table syntax escaped, controls visible.

    `&`, `<` and `>` become entities, so no raw HTML reaches the page; `` ` ``, `[`, `]`, `|` and `\\` get a
    backslash, so the text cannot open a code span, a link or an image, or add a table column; newlines become
    spaces, so it stays on its line.
    """
    flat = _BREAKS.sub(" ", str(text))
    return _MARKDOWN.sub(r"\\\1", html.escape(one_line(flat), quote=False))
