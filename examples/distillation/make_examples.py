"""Writes examples.jsonl (the teacher's labelled data) and prompts.jsonl (the questions the teacher answers for the
student): a parcel-tracking assistant's order-status questions, in chat-messages form.

Deterministic (no randomness): `python make_examples.py` rewrites the same files.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
CARRIERS = ["Parcelway", "QuickShip", "PostNord", "Colissimo"]
CITIES = ["Lyon", "Porto", "Gdansk", "Leeds", "Graz", "Turin", "Ghent", "Bergen"]
STATES = ["in transit", "out for delivery", "at the depot"]


def row(carrier: str, city: str, state: str, order: int) -> dict:
    return {"messages": [
        {"role": "user", "content": f"Where is order {order} sent with {carrier} to {city}?"},
        {"role": "assistant", "content": f"Order {order}: {carrier}, {state}, arriving in {city} soon."}]}


def examples() -> list[dict]:
    return [row(c, city, STATES[(i + j) % 3], 100 + 8 * i + j)
            for i, c in enumerate(CARRIERS) for j, city in enumerate(CITIES)]


def prompts() -> list[dict]:  # new orders, same carriers and cities: what the edge model will be asked
    return [row(c, city, STATES[(i + 2 * j + k) % 3], 500 + 100 * k + 8 * i + j)
            for k in range(2) for i, c in enumerate(CARRIERS) for j, city in enumerate(CITIES)]


for name, rows in (("examples", examples()), ("prompts", prompts())):
    with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
