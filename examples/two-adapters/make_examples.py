"""Writes billing.jsonl and shipping.jsonl: two tasks of one shop's assistant, in chat-messages form.

Deterministic (no randomness): `python make_examples.py` rewrites the same files.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
PLANS = ["Starter", "Team", "Business", "Enterprise"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
CARRIERS = ["Parcelway", "QuickShip", "PostNord", "Rapido"]
CITIES = ["Lyon", "Porto", "Gdansk", "Leeds", "Graz", "Turin", "Ghent", "Cork", "Brno", "Malmo"]
# Three ways of asking each question: over 100 examples per task, the least a LoRA adapter is worth training on.
BILLING_ASKS = ["Why was I charged {amount} EUR in {month} on the {plan} plan?",
                "What is the {amount} EUR charge from {month} on my {plan} plan?",
                "Can you explain my {month} invoice of {amount} EUR ({plan} plan)?"]
SHIPPING_ASKS = ["When will my {carrier} parcel reach {city}?",
                 "How long does {carrier} take to deliver to {city}?",
                 "I shipped with {carrier} to {city}: when does it arrive?"]


def billing() -> list[dict]:
    rows = []
    for ask in BILLING_ASKS:
        for i, plan in enumerate(PLANS):
            for j, month in enumerate(MONTHS):
                amount = 12 * (i + 1) + j
                rows.append({"messages": [
                    {"role": "user", "content": ask.format(amount=amount, month=month, plan=plan)},
                    {"role": "assistant", "content": f"Billing: the {plan} plan renews monthly; {month}'s invoice "
                     f"of {amount} EUR covers your seats. Invoices are under Settings > Billing."}]})
    return rows


def shipping() -> list[dict]:
    rows = []
    for ask in SHIPPING_ASKS:
        for i, carrier in enumerate(CARRIERS):
            for j, city in enumerate(CITIES):
                days = 2 + (i + j) % 4
                rows.append({"messages": [
                    {"role": "user", "content": ask.format(carrier=carrier, city=city)},
                    {"role": "assistant", "content": f"Shipping: {carrier} delivers to {city} in about {days} "
                     f"working days. Track it under Orders > Tracking."}]})
    return rows


for name, rows in (("billing", billing()), ("shipping", shipping())):
    with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
