"""Related records: near-duplicates, one prompt, one long answer; the units the train/validation split keeps whole.

Near-duplicates: MinHash LSH (datasketch) over word shingles of prompt + answer finds candidate pairs; each
candidate is confirmed with the exact Jaccard similarity of the shingle sets, so the pairs do not depend on
hashing luck. Without datasketch only prompts and answers group records, and a note says so. Works on the
normalised records of `backends.common.data` (it imports nothing from there, so `split_examples` can use it).
"""

from __future__ import annotations

import importlib.util
import re

__all__ = ["final_answer", "near_duplicate_pairs", "normal_text", "prompt_and_answers", "shingles", "split_groups"]

# Near-duplicates. Lee et al. 2022 ("Deduplicating Training Data Makes Language Models Better", arXiv:2107.06499,
# §4.1) use MinHash over 5-grams with Jaccard ≥ 0.8 on web documents; fine-tuning examples are a few dozen words,
# where one changed word already removes 5 of every ~25 five-word shingles, so we use 3-word shingles and 0.7.
SHINGLE_WORDS = 3
NEAR_DUPLICATE_THRESHOLD = 0.7
MINHASH_PERMUTATIONS = 128  # datasketch's default; estimate error about 1/sqrt(128) ≈ 0.09 before exact confirmation
MINHASH_SEED = 1  # datasketch's default seed: the same pairs on every run
# (false positive, false negative) weights for choosing LSH bands: every candidate is confirmed exactly, so a
# false positive costs one set comparison while a false negative is a missed pair; favour recall.
LSH_WEIGHTS = (0.1, 0.9)
# Identical answers shorter than this are labels or numbers that repeat by nature ("yes", "Paris", "4"); a repeated
# longer answer is text the model would memorise in training and be scored on in validation.
MIN_GROUPED_ANSWER_WORDS = 5


def prompt_and_answers(record: dict) -> tuple[str, list[str]]:
    """(prompt, answers): the conversation before the last answer, then every assistant turn, last one last."""
    if "messages" not in record:
        return record["prompt"], [record["chosen"], record["rejected"]]
    messages = record["messages"]
    prompt = "\n".join(f"{m['role']}: {m['content']}" for m in messages[:-1])
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    return prompt, answers


def final_answer(record: dict) -> str:
    """The answer a supervised record teaches (its last turn), or a preference pair's `chosen`."""
    return record["chosen"] if "messages" not in record else record["messages"][-1]["content"]


def normal_text(text: str) -> str:
    """Lowercased, whitespace collapsed: how prompts and answers are compared."""
    return " ".join(text.split()).lower()


def shingles(text: str) -> set[str]:
    """Every run of `SHINGLE_WORDS` words (lowercased, punctuation dropped); the whole text when shorter."""
    words = re.findall(r"\w+", text.lower())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def near_duplicate_pairs(records: list[dict]) -> tuple[list[tuple[int, int, float]], str | None]:
    """Pairs of record indices (i < j) at least `NEAR_DUPLICATE_THRESHOLD` alike, with their Jaccard similarity.

    Returns:
        The confirmed pairs, most similar first, and a note when the check could not run (datasketch missing).
    """
    if importlib.util.find_spec("datasketch") is None:
        return [], ('near-duplicates not checked: `datasketch` is not installed (`pip install "advisor[train]"`); '
                    "the split is grouped by prompts and answers only")
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(prompt_and_answers(r)[0] + "\n" + final_answer(r)) for r in records]
    lsh = MinHashLSH(threshold=NEAR_DUPLICATE_THRESHOLD, num_perm=MINHASH_PERMUTATIONS, weights=LSH_WEIGHTS)
    indices = [i for i, words in enumerate(sets) if words]
    # `bulk` shares one set of hash permutations: building them per record would dominate the run time.
    signatures = MinHash.bulk([[w.encode("utf-8") for w in sorted(sets[i])] for i in indices],
                              num_perm=MINHASH_PERMUTATIONS, seed=MINHASH_SEED)
    candidates: set[tuple[int, int]] = set()
    for index, signature in zip(indices, signatures, strict=True):
        candidates.update((earlier, index) for earlier in lsh.query(signature))
        lsh.insert(index, signature)
    pairs = []
    for a, b in sorted(candidates):
        jaccard = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
        if jaccard >= NEAR_DUPLICATE_THRESHOLD:
            pairs.append((a, b, round(jaccard, 3)))
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1])), None


def _union_groups(n: int, links: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        parent[root(b)] = root(a)
    return [root(i) for i in range(n)]


def _same_key_links(keys: list[str | None]) -> list[tuple[int, int]]:
    first: dict[str, int] = {}
    links = []
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key in first:
            links.append((first[key], index))
        else:
            first[key] = index
    return links


def split_groups(records: list[dict], pairs: list[tuple[int, int, float]] | None = None) -> list[int]:
    """A group id per record: near-duplicates, one prompt, or one answer of ≥ `MIN_GROUPED_ANSWER_WORDS` words.

    Args:
        records: Normalised records (`Examples.records`).
        pairs: Near-duplicate pairs already found (`near_duplicate_pairs`); None finds them.
    """
    if pairs is None:
        pairs, _ = near_duplicate_pairs(records)
    prompts = [normal_text(prompt_and_answers(r)[0]) for r in records]
    answers = [normal_text(final_answer(r)) for r in records]
    long_answers = [a if len(a.split()) >= MIN_GROUPED_ANSWER_WORDS else None for a in answers]
    links = [(a, b) for a, b, _ in pairs] + _same_key_links(prompts) + _same_key_links(long_answers)
    return _union_groups(len(records), links)
