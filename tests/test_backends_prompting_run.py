"""The prompting backend end to end: files written, held-out examples never shots, bad input writes nothing."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from advisor.core.errors import AdvisorError, InvalidInputError
from advisor.core.models import PromptStep
from advisor.core.paths import absolute_step
from backends.common.data import load_examples, split_examples
from backends.prompting import PromptResult
from backends.prompting import check as _check
from backends.prompting import run as _run


def run(step, run_dir, *, base_dir):
    """The backend on the step as a loaded plan gives it: relative paths made absolute against `base_dir`."""
    return _run(absolute_step(step, base_dir), run_dir)


def check(step, run_dir, *, base_dir):
    return _check(absolute_step(step, base_dir), run_dir)

pytestmark = pytest.mark.extras("rag")

FIXTURES = Path(__file__).parent / "fixtures" / "prompting"
GROUPED = FIXTURES / "grouped.jsonl"


def _step(**fields) -> PromptStep:
    defaults = {"model": "gpt-4o-mini", "examples_path": "grouped.jsonl", "n_shots": 4, "max_prompt_tokens": 400,
                "selection": "lexical", "instructions": "Answer with one word or number."}
    return PromptStep(**{**defaults, **fields})


def _held_out_lines(eval_fraction: float, seed: int) -> set[int]:
    examples = load_examples(GROUPED, for_preference=False)
    line_of = {json.dumps(r, sort_keys=True): n for r, n in zip(examples.records, examples.line_numbers, strict=True)}
    _, held_out = split_examples(examples, eval_fraction, seed)
    return {line_of[json.dumps(r, sort_keys=True)] for r in held_out}


def test_api_model_writes_the_template_and_skips_evaluation(tmp_path: Path) -> None:
    result = run(_step(), tmp_path / "run", base_dir=FIXTURES)
    assert result.evaluation is None and "not a local model" in result.evaluation_note
    assert not result.is_local_model and "heuristic" in result.budget.token_counter
    assert result.selection_method == "lexical" and len(result.shots) == 4
    assert result.n_pool_examples + result.n_eval_examples == result.n_examples == 24
    assert result.budget.total_tokens <= result.budget.max_prompt_tokens
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert files == {"prompt.json", "prompt.txt", "plan.yaml", "versions.json", "result.json"}
    assert set(result.artifacts.values()) == files
    assert PromptResult.model_validate_json((tmp_path / "run" / "result.json").read_text()) == result
    template = json.loads((tmp_path / "run" / "prompt.json").read_text())["messages"]
    assert template[0] == {"role": "system", "content": "Answer with one word or number."}
    assert template[-1] == {"role": "user", "content": "{question}"}
    assert len(template) == 2 + 2 * 4
    lines = GROUPED.read_text().splitlines()
    groups = {json.loads(lines[s.line_number - 1])["group"] for s in result.shots}
    assert len(groups) == 4  # one shot from each obvious group


@pytest.mark.parametrize("seed", range(6))
def test_held_out_examples_are_never_shots(tmp_path: Path, seed: int) -> None:
    result = run(_step(n_shots=19, eval_fraction=0.25, seed=seed), tmp_path, base_dir=FIXTURES)
    held_out = _held_out_lines(0.25, seed)
    assert len(held_out) == result.n_eval_examples == 6
    assert len(result.shots) == 18  # every pool example (18) is a shot; none of the held-out six
    assert not held_out & {s.line_number for s in result.shots}


def test_same_seed_same_prompt(tmp_path: Path) -> None:
    first = run(_step(seed=5), tmp_path / "a", base_dir=FIXTURES)
    again = run(_step(seed=5), tmp_path / "b", base_dir=FIXTURES)
    assert first.shots == again.shots
    assert (tmp_path / "a" / "prompt.txt").read_text() == (tmp_path / "b" / "prompt.txt").read_text()


def test_tight_budget_drops_whole_shots(tmp_path: Path) -> None:
    full = run(_step(), tmp_path / "full", base_dir=FIXTURES)
    # Less room than the two last shots take: a shorter member may stand in for one, not for both.
    budget = full.budget.total_tokens - sum(s.n_tokens for s in full.shots[-2:])
    tight = run(_step(max_prompt_tokens=budget), tmp_path / "tight", base_dir=FIXTURES)
    assert 2 <= len(tight.shots) < len(full.shots)
    assert tight.budget.n_clusters_dropped == len(full.shots) - len(tight.shots)
    assert tight.budget.total_tokens <= tight.budget.max_prompt_tokens
    text = (tmp_path / "tight" / "prompt.txt").read_text()
    examples = load_examples(GROUPED, for_preference=False)
    by_line = dict(zip(examples.line_numbers, examples.records, strict=True))
    for shot in tight.shots:  # each shot is in the prompt whole
        assert all(m["content"] in text for m in by_line[shot.line_number]["messages"])


def test_zero_shot_without_examples_and_context_documents(tmp_path: Path) -> None:
    result = run(PromptStep(model="gpt-4o-mini", max_prompt_tokens=200, instructions="Be kind.",
                            context_path="context"), tmp_path, base_dir=FIXTURES)
    assert result.shots == [] and result.selection_method == "none" and result.data_format is None
    system = json.loads((tmp_path / "prompt.json").read_text())["messages"][0]["content"]
    assert system.startswith("Be kind.") and "support hours are 9 to 5" in system


@pytest.mark.parametrize(
    ("fields", "error", "fragment"),
    [
        ({"examples_path": "missing.jsonl"}, InvalidInputError, "does not exist"),
        ({"examples_path": "bad_lines.jsonl"}, InvalidInputError, "bad_lines.jsonl:2: missing field `output`"),
        ({"max_prompt_tokens": 20}, AdvisorError, "too small for even one shot"),
        ({"model": "./no-model"}, InvalidInputError, "model: folder"),
        ({"context_path": "nowhere"}, InvalidInputError, "context_path"),
    ],
)
def test_bad_input_raises_and_writes_nothing(tmp_path: Path, fields: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as raised:
        run(_step(**fields), tmp_path / "run", base_dir=FIXTURES)
    assert fragment in raised.value.message
    assert not (tmp_path / "run").exists()
    assert any(fragment in p for p in check(_step(**fields), tmp_path / "run", base_dir=FIXTURES))


def test_check_is_clean_for_a_good_step(tmp_path: Path) -> None:
    assert check(_step(), tmp_path, base_dir=FIXTURES) == []
    assert check(_step(model="tiny-demo"), tmp_path, base_dir=FIXTURES) == []
    assert "tiny-demo" in check(PromptStep(model="tiny-demo", max_prompt_tokens=50), tmp_path, base_dir=FIXTURES)[0]


@pytest.mark.slow
def test_tiny_demo_end_to_end_with_embeddings(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    start = time.perf_counter()
    result = run(_step(model="tiny-demo", selection="auto", eval_fraction=0.25), tmp_path / "demo", base_dir=FIXTURES)
    assert result.is_demo_model and "demonstration model" in result.demo_note
    assert result.selection_method == "embedding" and "MiniLM" in result.selection_note
    assert "tokenizer of `tiny-demo`" in result.budget.token_counter
    lines = GROUPED.read_text().splitlines()
    assert len({json.loads(lines[s.line_number - 1])["group"] for s in result.shots}) == 4
    evaluation = result.evaluation
    assert evaluation is not None and evaluation.n_examples == 6
    zero, few = evaluation.zero_shot, evaluation.few_shot
    assert all(math.isfinite(x) and x > 0 for x in (zero.mean_nll, few.mean_nll))
    assert zero.mean_nll != few.mean_nll  # computed from two different prompts, not a constant
    assert few.mean_prompt_tokens > zero.mean_prompt_tokens
    assert few.mean_prompt_tokens <= result.budget.max_prompt_tokens
    assert all(0 <= x <= 1 for x in (zero.exact_match, few.exact_match, zero.token_f1, few.token_f1))
    rows = [json.loads(r) for r in (tmp_path / "demo" / "eval_examples.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    # The per-example NLLs, weighted by answer tokens, are what the mean is made of.
    assert min(r["zero_shot_nll"] for r in rows) <= zero.mean_nll <= max(r["zero_shot_nll"] for r in rows)
    assert (tmp_path / "demo" / "base-model" / "config.json").is_file()

    # The saved demo model as a local folder: its own tokenizer counts, and it is not labelled a demo by name.
    local = run(_step(model=str(tmp_path / "demo" / "base-model"), max_eval_examples=2), tmp_path / "local",
                base_dir=FIXTURES)
    assert local.is_local_model and local.evaluation is not None and local.evaluation.n_examples == 2
    assert local.budget.token_counter.startswith("tokenizer of")
    too_long = _step(model=str(tmp_path / "demo" / "base-model"), max_prompt_tokens=4096)
    assert "more than the model's context of 2048" in check(too_long, tmp_path / "x", base_dir=FIXTURES)[0]
    print(f"\nzero-shot NLL {zero.mean_nll:.4f}, few-shot NLL {few.mean_nll:.4f}; "
          f"EM {zero.exact_match:.2f}/{few.exact_match:.2f}; {time.perf_counter() - start:.1f} s")
