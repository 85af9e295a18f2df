"""Writes billing.jsonl and shipping.jsonl: two tasks of one shop's assistant, in chat-messages form.

Deterministic (no randomness): `python make_examples.py` rewrites the same files.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
PLANS = ["Starter", "Team", "Business", "Enterprise"]
MONTHS = ["January", "February", "March", "April", "May", "June"]
CARRIERS = ["Parcelway", "QuickShip", "PostNord"]
CITIES = ["Lyon", "Porto", "Gdansk", "Leeds", "Graz", "Turin"]


def billing() -> list[dict]:
    rows = []
    for i, plan in enumerate(PLANS):
        for j, month in enumerate(MONTHS):
            amount = 12 * (i + 1) + j
            rows.append({"messages": [
                {"role": "user", "content": f"Why was I charged {amount} EUR in {month} on the {plan} plan?"},
                {"role": "assistant", "content": f"Billing: the {plan} plan renews monthly; {month}'s invoice of "
                 f"{amount} EUR covers your seats. Invoices are under Settings > Billing."}]})
    return rows


def shipping() -> list[dict]:
    rows = []
    for i, carrier in enumerate(CARRIERS):
        for j, city in enumerate(CITIES):
            days = 2 + (i + j) % 4
            rows.append({"messages": [
                {"role": "user", "content": f"When will my {carrier} parcel reach {city}?"},
                {"role": "assistant", "content": f"Shipping: {carrier} delivers to {city} in about {days} working "
                 f"days. Track it under Orders > Tracking."}]})
    return rows


for name, rows in (("billing", billing()), ("shipping", shipping())):
    with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
