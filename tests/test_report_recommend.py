"""Rendering a recommendation: golden terminal text and Markdown, self-contained HTML, the JSON shape."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from advisor.app.render.recommendation import (
    recommendation_html,
    recommendation_markdown,
    render_recommendation,
)
from advisor.app.render.terminal import write_report
from advisor.core.models import Answers
from advisor.core.recommend import recommend

GOLDEN = Path(__file__).parent / "golden"
SCENARIOS = {s["id"]: s for s in yaml.safe_load((Path(__file__).parent / "fixtures" / "seed-scenarios.yaml").read_text())}


def _rec(scenario: str):  # noqa: ANN202
    scenario_data = SCENARIOS[scenario]
    return recommend(Answers(**scenario_data["inputs"], task=scenario_data["title"]))


def _check_golden(name: str, text: str, update: bool) -> None:
    path = GOLDEN / name
    if update:
        path.write_text(text)
    assert path.is_file(), f"golden file {name} is missing; create it with --update-golden and review it"
    assert text == path.read_text(), f"{name} changed; review and rerun with --update-golden"


@pytest.mark.parametrize("scenario", ["seed-09", "seed-04", "seed-11"])
def test_terminal_report_golden(scenario: str, update_golden: bool) -> None:
    out = StringIO()
    render_recommendation(_rec(scenario), Console(file=out, width=100, color_system=None))
    _check_golden(f"recommend_{scenario.replace('-', '')}.txt", out.getvalue(), update_golden)


def test_markdown_report_golden(update_golden: bool) -> None:
    _check_golden("recommend_seed09.md", recommendation_markdown(_rec("seed-09")), update_golden)


def test_terminal_report_shows_stack_rule_ids_and_sources() -> None:
    out = StringIO()
    rec = _rec("seed-09")
    render_recommendation(rec, Console(file=out, width=100, color_system=None))
    text = out.getvalue()
    assert text.startswith("Recommendation: LoRA + RAG")
    for option in rec.options:
        for reason in option.reasons:
            assert f"[{reason.rule_id}]" in text
    assert "break-even:" in text and "Peak memory per GPU" in text


def test_html_is_self_contained_with_both_charts(tmp_path: Path) -> None:
    rec = _rec("seed-09")
    page = recommendation_html(rec)
    assert page.count("<svg") == 2 and "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"https?:", page) and "@import" not in page
    assert "style-and-facts-combine" in page and "does not fit" in page  # full fine-tuning on the 40 GB card
    write_report(rec, tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == page
