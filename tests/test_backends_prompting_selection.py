"""Shot selection: one shot per obvious group, deterministic per seed, lexical features without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.common.data import load_examples
from backends.prompting.selection import featurise, question_text, select_clusters

np = pytest.importorskip("numpy")
FIXTURE = Path(__file__).parent / "fixtures" / "prompting" / "grouped.jsonl"


def _grouped() -> tuple[list[dict], list[str]]:
    examples = load_examples(FIXTURE, for_preference=False)
    groups = [json.loads(line)["group"] for line in FIXTURE.read_text().splitlines()]
    return examples.records, [groups[n - 1] for n in examples.line_numbers]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_lexical_clusters_recover_the_obvious_groups(seed: int) -> None:
    records, groups = _grouped()
    vectors, method, note = featurise([question_text(r) for r in records], "lexical")
    clusters = select_clusters(vectors, 4, seed)
    assert method == "lexical" and "TF-IDF" in note
    assert sorted(groups[c.medoid] for c in clusters) == ["antonyms", "arithmetic", "capitals", "french"]
    for cluster in clusters:  # every member sits with its own group, the medoid first
        assert {groups[i] for i in cluster.members} == {groups[cluster.medoid]}
    assert sorted(i for c in clusters for i in c.members) == list(range(len(records)))


def test_same_seed_same_choice_and_sizes_order_the_clusters() -> None:
    records, _ = _grouped()
    vectors, _, _ = featurise([question_text(r) for r in records[:17]], "lexical")  # uneven groups
    first, again = select_clusters(vectors, 3, seed=3), select_clusters(vectors, 3, seed=3)
    assert [c.members for c in first] == [c.members for c in again]
    sizes = [len(c.members) for c in first]
    assert sizes == sorted(sizes, reverse=True)


def test_members_are_ordered_by_similarity_to_their_medoid() -> None:
    records, _ = _grouped()
    vectors, _, _ = featurise([question_text(r) for r in records], "lexical")
    for cluster in select_clusters(vectors, 2, seed=0):
        similarity = [float(vectors[i] @ vectors[cluster.medoid]) for i in cluster.members]
        assert similarity == sorted(similarity, reverse=True)


def test_medoid_is_central_not_an_outlier() -> None:
    # Farthest-first alone picks the extreme point; the k-medoids rounds move the centre to the middle.
    angles = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 3.0, 3.1, 3.2])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    clusters = select_clusters(vectors, 2, seed=0)
    assert sorted(c.medoid for c in clusters) == [2, 6]


def test_more_shots_than_examples_and_none() -> None:
    vectors = np.eye(3)
    assert len(select_clusters(vectors, 10, seed=0)) == 3
    assert select_clusters(vectors, 0, seed=0) == []


def test_lexical_vectors_are_unit_norm_and_stable() -> None:
    texts = ["add two numbers", "capital of france", ""]
    vectors, _, _ = featurise(texts, "lexical")
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1.0)
    assert not vectors[2].any()  # no words: a zero vector, not NaN
    assert np.array_equal(vectors, featurise(texts, "lexical")[0])


def test_question_text_uses_user_turns_only() -> None:
    record = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
                           {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
                           {"role": "assistant", "content": "A2"}]}
    assert question_text(record) == "Q1\nQ2"
