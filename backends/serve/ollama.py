"""An Ollama `Modelfile`: FROM, ADAPTER, a TEMPLATE in Go-template syntax derived from the chat template, stops.

The chat template (Jinja) is rendered by the tokenizer itself on marker messages; what surrounds each marker is
that role's prefix and suffix. The Go template repeats them per message in Ollama's `.Messages` form and ends
with the generation prompt. A template that does not render each message on its own (it merges the system
message into the first user turn, say) raises `TemplateError`.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

__all__ = ["RoleFormat", "TemplateError", "go_template", "modelfile", "parse_modelfile", "role_format"]

MARK = "\u2063MARK\u2063"  # invisible separator: no template writes it on its own


class TemplateError(ValueError):
    """The chat template cannot be expressed per message."""


@dataclass(frozen=True)
class RoleFormat:
    """Text around one message of each role, and what the template appends to ask for an answer."""

    system: tuple[str, str]
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation: str
    bos: str


def _split(text: str, where: str) -> tuple[str, str]:
    if text.count(MARK) != 1:
        raise TemplateError(f"the chat template does not write the {where} message once as given")
    before, after = text.split(MARK)
    return before, after


def role_format(tokenizer) -> RoleFormat:
    """Each role's prefix and suffix, as the tokenizer's own chat template renders them.

    Raises:
        TemplateError: no chat template, or one that does not render messages one by one.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise TemplateError("the tokenizer has no chat template")

    def render(messages, generation=False):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)

    bos = tokenizer.bos_token or ""
    user = render([{"role": "user", "content": MARK}])
    head = bos if bos and user.startswith(bos) else ""
    user_fix = _split(user[len(head):], "user")
    both = render([{"role": "user", "content": MARK}, {"role": "assistant", "content": MARK}])
    if not both.startswith(user.split(MARK)[0]) or both.count(MARK) != 2:
        raise TemplateError("the chat template does not write the assistant message after the user's")
    cut = len(head) + len(user_fix[0]) + len(MARK) + len(user_fix[1])
    if both[:cut] != user:
        raise TemplateError("the chat template writes a user message differently when an answer follows")
    assistant_fix = _split(both[cut:], "assistant")
    try:
        system = render([{"role": "system", "content": MARK}, {"role": "user", "content": "u"}])
    except Exception as exc:  # templates that refuse a system role raise their own exception
        raise TemplateError(f"the chat template refuses a system message ({exc})") from None
    tail = user[len(head):].replace(MARK, "u")
    if not system.endswith(tail):
        raise TemplateError("the chat template merges the system message into the user's")
    system_fix = _split(system[len(head):len(system) - len(tail)], "system")
    generation = render([{"role": "user", "content": MARK}], True)[len(user):]
    return RoleFormat(system=system_fix, user=user_fix, assistant=assistant_fix, generation=generation, bos=head)


def _go(text: str) -> str:
    """Literal text inside a Go template (`{{` would start an action)."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(fmt: RoleFormat) -> str:
    """The Ollama TEMPLATE: every message with its role's prefix and suffix, then the generation prompt."""
    parts = ["{{ range $i, $m := .Messages }}"]
    for i, (role, (pre, post)) in enumerate((("system", fmt.system), ("user", fmt.user),
                                             ("assistant", fmt.assistant))):
        parts.append(f'{{{{ {"if" if i == 0 else "else if"} eq $m.Role "{role}" }}}}'
                     f"{_go(pre)}{{{{ $m.Content }}}}{_go(post)}")
    parts.append("{{ end }}{{ end }}")  # no `{{-`: it would trim the suffixes' newlines
    parts.append(_go(fmt.generation))
    return "".join(parts)


def _quoted(text: str) -> str:
    if '"""' in text:
        raise TemplateError('the template holds `"""`, which a Modelfile cannot quote')
    return f'"""{text}"""'


def modelfile(source: str, adapter: str | None, template: str | None, stops: list[str], num_ctx: int) -> str:
    """The Modelfile text."""
    lines = [f"FROM {source}"]
    if adapter:
        lines.append(f"ADAPTER {adapter}")
    if template is not None:
        lines.append(f"TEMPLATE {_quoted(template)}")
    lines += [f"PARAMETER stop {json.dumps(stop)}" for stop in stops]
    lines.append(f"PARAMETER num_ctx {num_ctx}")
    return "\n".join(lines) + "\n"


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(instruction, argument) pairs of a Modelfile: `#` comments, `\"\"\"...\"\"\"` multi-line arguments, quoted stops.

    Raises:
        ValueError: an unknown instruction or an unterminated `\"\"\"`.
    """
    known = {"FROM", "ADAPTER", "TEMPLATE", "SYSTEM", "PARAMETER", "LICENSE", "MESSAGE", "REQUIRES"}
    out, i, lines = [], 0, text.splitlines()
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        word, _, arg = line.partition(" ")
        if word.upper() not in known:
            raise ValueError(f"unknown Modelfile instruction `{word}`")
        arg = arg.strip()
        if arg.startswith('"""'):
            body = arg[3:]
            while '"""' not in body:
                if i >= len(lines):
                    raise ValueError(f'{word}: unterminated """')
                body += "\n" + lines[i]
                i += 1
            arg = body[:body.index('"""')]
        elif word.upper() == "PARAMETER":
            name, _, value = arg.partition(" ")
            value = value.strip()
            arg = f"{name} {json.loads(value) if value.startswith(chr(34)) else shlex.split(value)[0]}"
        out.append((word.upper(), arg))
    return out
