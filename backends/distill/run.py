"""Sequence-level distillation: the teacher answers every prompt; the answers are appended as chat JSON Lines.

Each batch is appended and fsynced before the next starts, so a run killed at any point keeps every answer
already written; the next attempt drops a torn last line, skips the prompts answered (by index, each line
carrying its prompt: a prompts file edited in between starts afresh) and continues. Prompts the teacher answers
with nothing are listed in a side file (they cannot train a student).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.fileio import private_files
from advisor.core.models import DistillStep
from backends.common.data import load_examples
from backends.common.tiny import DEMO_MODELS, build_tiny_demo, is_demo_model
from backends.distill.results import DistillResult

__all__ = ["EMPTY_FILE", "TEACHER_DIR", "answered", "load_prompts", "run"]

EMPTY_FILE = "teacher-empty.jsonl"
TEACHER_DIR = "teacher-model"  # where a `tiny-demo` teacher is built (from the prompts)
PROGRESS_SECONDS = 2.0


def _bare_prompt(record: object) -> tuple[list[dict] | None, str | None]:
    """(the chat prompt, None) of a prompt-only line, (None, None) for another format, (None, why) when bad."""
    if not isinstance(record, dict):
        return None, None
    if "prompt" in record and not {"completion", "chosen", "rejected"} & set(record):
        if not isinstance(record["prompt"], str) or not record["prompt"].strip():
            return None, "empty `prompt`"
        return [{"role": "user", "content": record["prompt"]}], None
    messages = record.get("messages")
    if not (isinstance(messages, list) and messages and isinstance(messages[-1], dict)
            and messages[-1].get("role") == "user"):
        return None, None
    for i, m in enumerate(messages):
        if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str) and m["content"].strip()):
            return None, f"messages[{i}] must have a role (system/user/assistant) and non-empty content"
    return [{"role": m["role"], "content": m["content"]} for m in messages], None


def load_prompts(step: DistillStep) -> list[list[dict]]:
    """The chat prompts of the file, the first `max_prompts` of them.

    Prompt-only lines (`{"prompt": ...}`, or `messages` ending with a user turn) are taken whole; a supervised
    file (instruction/output, messages, prompt/completion) gives every turn before its last answer.

    Raises:
        AdvisorError, InvalidInputError: the file is missing, empty or has bad lines.
    """
    from advisor.core.errors import InvalidInputError

    path = Path(step.prompts_path)
    prompts, problems, other = [], [], False
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                prompt, problem = _bare_prompt(json.loads(line))
            except ValueError:
                prompt, problem = None, None
            if problem:
                problems.append(f"{path.name}:{number}: {problem}")
            other = other or (prompt is None and problem is None)
            if prompt is not None:
                prompts.append(prompt)
    if problems and not other:
        raise InvalidInputError(problems[:50], hint=f"fix these lines of `{path}`")
    if other or not prompts:  # not prompt-only: a supervised file, read (and its bad lines named) by the loader
        prompts = [r["messages"][:-1] for r in load_examples(path, for_preference=False).records]
    return prompts[: step.max_prompts] if step.max_prompts else prompts


def _read_lines(path: Path) -> list[dict]:
    """The complete lines of a file this step appends to; a torn last line (a kill mid-write) is cut off."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as fh:
            fh.truncate(end)
    return [json.loads(line) for line in data[:end].decode("utf-8").splitlines() if line.strip()]


def answered(step_dir: Path, step: DistillStep) -> tuple[list[dict], list[dict]]:
    """(answer lines, empty-answer lines) an earlier attempt wrote in `step_dir`."""
    return _read_lines(step_dir / step.output_file), _read_lines(step_dir / EMPTY_FILE)


def _append(path: Path, lines: list[dict]) -> None:
    if not lines:
        return
    with private_files(), path.open("a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())


def _teacher(step: DistillStep, step_dir: Path, records: list[dict]):
    from backends.distill.teacher import ApiTeacher, LocalTeacher

    if step.api_base_url:
        return ApiTeacher(step.api_base_url, step.teacher, step.api_key_env), False
    model = step.teacher
    if model in DEMO_MODELS:  # a random demonstration teacher: shows the pipeline, nothing more
        folder = step_dir / TEACHER_DIR
        if not (is_demo_model(folder) and (folder / "config.json").is_file()):
            build_tiny_demo(records, folder, seed=step.seed, name=model)
        model = str(folder)
    elif not Path(model).exists() and not (model.count("/") == 1 and not model.startswith((".", "/", "~"))):
        raise AdvisorError(f"teacher `{step.teacher}` is neither a folder nor a Hugging Face id",
                           "name a model folder, a Hub id, `tiny-demo`, or the method of an earlier training step "
                           "(`full`, `lora`, ...) of this plan")
    base = model
    config = Path(model) / "adapter_config.json"
    if config.is_file():  # an adapter: the demo marker sits on its base
        base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") or model
    return LocalTeacher(model), is_demo_model(base) or is_demo_model(model)


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("torch", "transformers", "peft"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "missing"
    return out


def run(step: DistillStep, step_dir: str | Path, *, resume: bool = False) -> DistillResult:
    """Answer every prompt not answered yet and return the counts over all attempts.

    Args:
        step: The step, linked (an earlier training step's teacher is its model folder).
        step_dir: The step's own folder (created).
        resume: Keep the answers an earlier attempt wrote there; else start afresh.

    Raises:
        AdvisorError: the prompts file is bad, the teacher cannot be loaded or asked.
    """
    step_dir = Path(step_dir)
    prompts = load_prompts(step)
    step_dir.mkdir(parents=True, exist_ok=True)
    out, empty = step_dir / step.output_file, step_dir / EMPTY_FILE
    if not resume:
        out.unlink(missing_ok=True)
        empty.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    done_lines, empty_lines = answered(step_dir, step)
    kept = [(line["teacher"]["index"], line["messages"][:-1]) for line in done_lines]
    kept += [(line["index"], line["prompt"]) for line in empty_lines]
    if any(i >= len(prompts) or prompts[i] != prompt for i, prompt in kept):
        print("distill: the prompts file changed since the interrupted attempt; answering every prompt afresh",
              file=sys.stderr)
        out.unlink(missing_ok=True)
        empty.unlink(missing_ok=True)
        done_lines, empty_lines = [], []
    done = {line["teacher"]["index"] for line in done_lines} | {line["index"] for line in empty_lines}
    todo = [i for i in range(len(prompts)) if i not in done]
    teacher, is_demo = _teacher(step, step_dir, [{"messages": p} for p in prompts])
    total = len(prompts)
    print(f"distill: {len(done)} of {total} prompts answered earlier, {len(todo)} to go "
          f"({teacher.kind} teacher on {teacher.device})", file=sys.stderr)
    shown = time.perf_counter()
    for start in range(0, len(todo), step.batch_size):
        batch = todo[start: start + step.batch_size]
        began = time.perf_counter()
        rows = teacher.answer([prompts[i] for i in batch], step.max_new_tokens)
        share = (time.perf_counter() - began) / len(batch)
        lines, blanks = [], []
        for i, (text, n_prompt, n_answer) in zip(batch, rows, strict=True):
            meta = {"index": i, "prompt_tokens": n_prompt, "answer_tokens": n_answer, "seconds": share}
            if text:
                lines.append({"messages": [*prompts[i], {"role": "assistant", "content": text}],
                              "teacher": meta})
            else:
                blanks.append({**meta, "prompt": prompts[i]})
        _append(empty, blanks)
        _append(out, lines)
        done_lines += lines
        empty_lines += blanks
        finished = len(done_lines) + len(empty_lines)
        if time.perf_counter() - shown >= PROGRESS_SECONDS or finished == total:
            shown = time.perf_counter()
            tokens = sum(line["teacher"]["answer_tokens"] for line in done_lines) + sum(b["answer_tokens"]
                                                                                         for b in empty_lines)
            print(f"distill: {finished}/{total} prompts, {tokens:,} tokens generated", file=sys.stderr)
    metas = [line["teacher"] for line in done_lines] + empty_lines
    answer_tokens = sum(m["answer_tokens"] for m in metas)
    seconds = sum(m["seconds"] for m in metas)
    if not done_lines:
        raise AdvisorError(f"the teacher answered none of the {total} prompts (every answer was empty)",
                           "check the teacher model, or raise max_new_tokens")
    artifacts = {"answers": step.output_file}
    if empty_lines:
        artifacts["empty_answers"] = EMPTY_FILE
    if (step_dir / TEACHER_DIR).is_dir():
        artifacts["teacher_model"] = TEACHER_DIR
    return DistillResult(
        teacher=step.teacher, teacher_kind=teacher.kind, is_demo_model=is_demo, device=teacher.device,
        n_prompts=total, n_answers=len(done_lines), n_empty=len(empty_lines), n_resumed=len(done),
        prompt_tokens=sum(m["prompt_tokens"] for m in metas), answer_tokens=answer_tokens, wall_seconds=seconds,
        tokens_per_second=answer_tokens / seconds if seconds > 0 else 0.0, max_new_tokens=step.max_new_tokens,
        output_file=step.output_file, artifacts=artifacts, versions=_versions(),
    )
