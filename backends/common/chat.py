"""Chat messages as both the prompting and the training backend build and render them (no heavy imports)."""

from __future__ import annotations

__all__ = ["PLAIN_HEADERS", "build_messages", "render_text", "shared_system", "split_record"]

# Role headers for models without a chat template (the demo model's own template uses the same roles).
PLAIN_HEADERS = {"system": "### System:\n", "user": "### User:\n", "assistant": "### Assistant:\n"}


def split_record(record: dict) -> tuple[list[dict], str]:
    """(the turns before the final answer, without any system message; the final answer)."""
    turns = [m for m in record["messages"] if m["role"] != "system"]
    return turns[:-1], turns[-1]["content"]


def shared_system(records: list[dict]) -> str:
    """The system message every record starts with, when they all share one; else empty."""
    systems = {r["messages"][0]["content"] if r["messages"][0]["role"] == "system" else "" for r in records}
    return systems.pop() if len(systems) == 1 else ""


def build_messages(system: str, shots: list[dict], question: list[dict], answer: str | None = None) -> list[dict]:
    """System message (when non-empty), each shot's turns, the question's turns, and the answer when given."""
    messages = [{"role": "system", "content": system}] if system else []
    for shot in shots:
        messages.extend(m for m in shot["messages"] if m["role"] != "system")
    messages.extend(question)
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def render_text(messages: list[dict], tokenizer=None, *, add_generation_prompt: bool) -> str:
    """The prompt as the model reads it: the tokenizer's chat template, else `### Role:` headers."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    text = "".join(f"{PLAIN_HEADERS[m['role']]}{m['content']}\n\n" for m in messages)
    return text + (PLAIN_HEADERS["assistant"] if add_generation_prompt else "")
