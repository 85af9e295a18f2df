"""Answer metrics: exact match and word-overlap F1 after normalisation."""

from __future__ import annotations

import pytest

from backends.common.evaluation import exact_match, normalise_answer, token_f1


@pytest.mark.parametrize(
    ("prediction", "reference", "em", "f1"),
    [
        ("Paris", "paris.", 1.0, 1.0),
        ("  the   Eiffel tower ", "The Eiffel Tower", 1.0, 1.0),
        ("Paris, France", "Paris", 0.0, 2 / 3),  # precision 1/2, recall 1
        ("London", "Paris", 0.0, 0.0),
        ("", "Paris", 0.0, 0.0),
        ("", "", 1.0, 1.0),
        ("a a b", "a b b", 0.0, 2 / 3),  # overlap counts multiplicity: min(2,1)+min(1,2) = 2 of 3
    ],
)
def test_metrics(prediction: str, reference: str, em: float, f1: float) -> None:
    assert exact_match(prediction, reference) == em
    assert token_f1(prediction, reference) == pytest.approx(f1)


def test_normalise_answer() -> None:
    assert normalise_answer("It's 12:30,\tOK?") == "it s 12 30 ok"
