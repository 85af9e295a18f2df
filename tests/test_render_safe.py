"""Escaping user text for a terminal and for Markdown: visible and inert, never dropped."""

from __future__ import annotations

import pytest

from advisor.app.render.safe import markdown_text, one_line, terminal_text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcode ✓", "plain text, ünïcode ✓"),
        ("keep\nnew lines\tand tabs", "keep\nnew lines\tand tabs"),
        ("title\x1b]0;pwned\x07", "title\\x1b]0;pwned\\x07"),
        ("clear\x1b[2J\x1b[H", "clear\\x1b[2J\\x1b[H"),
        ("over\rwrite", "over\\x0dwrite"),
        ("c1 \x9b31m", "c1 \\x9b31m"),
        ("bidi \u202eevil", "bidi \\u202eevil"),
        ("nul \x00 del \x7f", "nul \\x00 del \\x7f"),
    ],
)
def test_terminal_text(text: str, shown: str) -> None:
    assert terminal_text(text) == shown


def test_one_line_shows_line_breaks_too() -> None:
    assert one_line("a\nb\tc\x1b") == "a\\x0ab\\x09c\\x1b"


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("[click](javascript:alert(1))", "\\[click\\](javascript:alert(1))"),
        ("![pixel](http://t/p.png)", "!\\[pixel\\](http://t/p.png)"),
        ("`code` a|b \\", "\\`code\\` a\\|b \\\\"),
        ("two\nlines\r\nthree", "two lines three"),
        ("Le Scao & Rush", "Le Scao &amp; Rush"),
        ("esc\x1b[31m", "esc\\\\x1b\\[31m"),
    ],
)
def test_markdown_text(text: str, rendered: str) -> None:
    assert markdown_text(text) == rendered
