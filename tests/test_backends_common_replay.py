"""Replay against forgetting: the shipped general set, the mix into the training split, the step's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from advisor.core.models import TrainStep
from backends.common.replay import GENERAL_SET, general_examples, mix_replay
from backends.common.suite import check_answer, load_suite


def _task(n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(n)]


def test_general_set_never_holds_the_suite_prompts_and_passes_its_own_format_checks() -> None:
    items, _ = load_suite()
    general = general_examples()
    prompts = {r["messages"][0]["content"] for r in general}
    assert len(general) == len(prompts) == 74  # distinct prompts
    assert not prompts & {item.prompt for item in items}  # a replayed run never sees its exam
    # Each format answer in the set passes the suite's own check for that format (it teaches the right habit).
    by_kind = {"json_keys": 0, "one_word": 0, "list_n": 0}
    for record in general:
        prompt, answer = record["messages"][0]["content"], record["messages"][1]["content"]
        if prompt.startswith(("Return only a JSON", "Describe a")):
            keys = list(json.loads(answer))
            item = next(i for i in items if i.category == "json_keys").model_copy(update={"keys": keys})
            by_kind["json_keys"] += check_answer(item, answer)
        elif "one word only" in prompt:
            by_kind["one_word"] += check_answer(next(i for i in items if i.category == "one_word"), answer)
        elif prompt.startswith("List exactly"):
            n = int(prompt.split()[2])
            item = next(i for i in items if i.category == "list_n").model_copy(update={"n_items": n})
            by_kind["list_n"] += check_answer(item, answer)
    assert by_kind == {"json_keys": 18, "one_word": 12, "list_n": 10}


def test_mix_adds_the_share_asked_for_and_keeps_every_task_example() -> None:
    train = _task(40)
    mixed, replay = mix_replay(train, 0.25, None, seed=3)
    assert replay is not None and replay.source == GENERAL_SET and replay.n_added == 10 and replay.n_available == 74
    assert len(mixed) == 50 and all(r in mixed for r in train)
    assert mix_replay(train, 0.25, None, seed=3)[0] == mixed  # seeded
    assert mix_replay(train, 0.0, None, seed=3) == (train, None)
    # More replay than the source holds: it is cycled, every general example used before any repeats.
    big, replay = mix_replay(_task(100), 1.0, None, seed=0)
    general = [r for r in big if not r["messages"][0]["content"].startswith("q")]
    assert replay.n_added == len(general) == 100
    assert len({json.dumps(r) for r in general}) == 74


def test_mix_from_a_file_of_the_users(tmp_path: Path) -> None:
    path = tmp_path / "general.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"say {w}", "output": w}) + "\n" for w in "abcdef"))
    mixed, replay = mix_replay(_task(10), 0.3, str(path), seed=0)
    assert replay.source == str(path) and replay.n_added == 3 and replay.n_available == 6 and len(mixed) == 13


def test_step_refuses_replay_where_it_cannot_apply() -> None:
    with pytest.raises(ValidationError, match="DPO step trains on preference pairs"):
        TrainStep(method="dpo", base_model="tiny-demo", data_path="pairs.jsonl", replay_fraction=0.1)
    with pytest.raises(ValidationError, match="replay_fraction is 0"):
        TrainStep(method="lora", base_model="tiny-demo", data_path="d.jsonl", replay_path="general.jsonl")
    with pytest.raises(ValidationError):
        TrainStep(method="lora", base_model="tiny-demo", data_path="d.jsonl", replay_fraction=1.5)
