"""Decision v2 in the HTML report: the new inputs are shown, and each reason is listed once."""

from __future__ import annotations

import re

from advisor.app.render.recommendation import recommendation_html
from advisor.core.models import Answers
from advisor.core.recommend import recommend


def test_html_shows_the_new_inputs_and_each_reason_once() -> None:
    answers = Answers(goal=["style_format"], n_examples=3000, languages=["en", "de"], deployment="edge",
                      edge_memory_gb=6, no_external_api=True, tried=["zero_shot"], task_type="classification",
                      example_source="synthetic", keep_alignment=True, latency_p95_ms=1500, budget_usd=500)
    rec = recommend(answers)
    page = recommendation_html(rec)
    section = page.split("<h2>Your answers</h2>")[1].split("<h2>")[0]
    for text in ("languages</td><td>en, de", "deployment</td><td>edge", "edge_memory_gb</td><td>6",
                 "no_external_api</td><td>True", "tried</td><td>zero_shot", "task_type</td><td>classification",
                 "example_source</td><td>synthetic", "keep_alignment</td><td>True"):
        assert text in section, text
    reasons = page.split("<h2>Reasons, with their rules and sources</h2>")[1].split("<h2>")[0]
    ids = re.findall(r'<li><span class="rid">([a-z0-9-]+)</span>', reasons)
    assert ids and len(ids) == len(set(ids))  # one line per rule, however many options it touched
    # edge-quantized-serving notes seven options: one line naming them all.
    line = next(li for li in reasons.split("<li>") if "edge-quantized-serving" in li)
    assert "lora (note)" in line and "prompting (note)" in line


def test_a_tie_is_shown_in_every_report_with_its_tie_break() -> None:
    from io import StringIO

    from rich.console import Console

    from advisor.app.render.recommendation import recommendation_markdown, render_recommendation

    rec = recommend(Answers(goal=["knowledge"], n_documents=20, corpus_tokens=20_000, base_model="llama-3.1-8b",
                            requests_per_day=100, gpu={"type": "a100-80gb", "count": 1}))
    out = StringIO()
    render_recommendation(rec, Console(file=out, width=200))
    assert "tie: prompting, rag all score" in out.getvalue()
    assert "**Tie:** prompting, rag all score" in recommendation_markdown(rec)
    assert "<b>Tie:</b> prompting, rag all score" in recommendation_html(rec)


def test_residency_embeds_the_corpus_locally() -> None:
    rec = recommend(Answers(goal=["knowledge"], n_documents=1000, no_external_api=True))
    assert rec.option("rag").one_time_usd == 0
    assert any("local model" in a for a in rec.option("rag").assumptions)
