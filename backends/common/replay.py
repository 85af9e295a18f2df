"""Replay against forgetting: general instruction examples mixed into a training split.

The seeds' first remedy for a tuned model that lost general abilities is to mix general instruction data
into the task data. `TrainStep.replay_fraction` says how much (a share of the training split's size) and
`replay_path` from where: a JSON Lines file of the user's, or, when none is named, the general set built
here. That set is written for advisor from the fact tables below — the same skills the regression suite
checks (JSON with given keys, one-word answers, lists of n items, answers in the question's language,
refusals of clearly harmful asks) and short factual answers — but never the suite's own prompts, so a
replayed run does not see its exam (a test asserts the two share no prompt).

Replay goes into the training split only, after the split: the held-out examples and the verdict stay the
task's own.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from pydantic import Field

from advisor.core.models import Model

__all__ = ["GENERAL_SET", "ReplayMix", "general_examples", "mix_replay"]

GENERAL_SET = "the general set shipped with advisor (backends/common/replay.py)"

_CAPITALS = [("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Peru", "Lima"), ("Norway", "Oslo"),
             ("Portugal", "Lisbon"), ("Vietnam", "Hanoi"), ("Chile", "Santiago"), ("Ireland", "Dublin"),
             ("Austria", "Vienna"), ("Morocco", "Rabat"), ("Sweden", "Stockholm"), ("Argentina", "Buenos Aires")]
_OBJECTS = [("chair", "wood", 4), ("bicycle", "steel", 2), ("table", "oak", 4), ("stool", "pine", 3),
            ("tricycle", "aluminium", 3), ("wagon", "iron", 4)]
_ONE_WORD = [("What is frozen water called?", "Ice"), ("Which colour do you get by mixing blue and yellow?", "Green"),
             ("What is the largest ocean on Earth?", "Pacific"), ("Which animal is known as the king of the jungle?", "Lion"),
             ("What do bees make?", "Honey"), ("Which month has the fewest days?", "February"),
             ("What is the opposite of 'up'?", "Down"), ("Which gas do plants take in from the air?", "Carbon"),
             ("How many legs does a spider have? Answer as a word.", "Eight"), ("What is the colour of grass?", "Green"),
             ("Which star is closest to the Earth?", "Sun"), ("What is the plural of 'mouse'?", "Mice")]
_LISTS = [("primary colours", ["Red", "Blue", "Yellow"]), ("musical instruments", ["Piano", "Violin", "Flute", "Drum"]),
          ("planets of the solar system", ["Mercury", "Venus", "Earth", "Mars", "Jupiter"]),
          ("kinds of tree", ["Oak", "Birch", "Maple"]), ("kitchen utensils", ["Spoon", "Whisk"]),
          ("rivers in Europe", ["Danube", "Rhine", "Seine", "Thames"]), ("farm animals", ["Cow", "Sheep", "Goat"]),
          ("board games", ["Chess", "Go", "Checkers", "Backgammon"]), ("shapes", ["Circle", "Square", "Triangle"]),
          ("ways to travel", ["Walking", "Cycling", "Train", "Bus", "Car"])]
_LANGUAGES = [
    ("Сколько дней в неделе? Ответь по-русски.", "В неделе семь дней."),
    ("Какая самая длинная река в Европе? Ответь по-русски.", "Самая длинная река в Европе — Волга."),
    ("Πόσες μέρες έχει μια εβδομάδα; Απάντησε στα ελληνικά.", "Μια εβδομάδα έχει επτά μέρες."),
    ("كم عدد أيام الأسبوع؟ أجب بالعربية.", "في الأسبوع سبعة أيام."),
    ("एक सप्ताह में कितने दिन होते हैं? हिंदी में उत्तर दें।", "एक सप्ताह में सात दिन होते हैं।"),
    ("请用中文回答：一周有几天？", "一周有七天。"),
    ("一週間は何日ですか？日本語で答えてください。", "一週間は七日です。"),
    ("일주일은 며칠입니까? 한국어로 대답해 주세요.", "일주일은 칠 일입니다."),
    ("כמה ימים יש בשבוע? ענה בעברית.", "יש שבעה ימים בשבוע."),
    ("หนึ่งสัปดาห์มีกี่วัน กรุณาตอบเป็นภาษาไทย", "หนึ่งสัปดาห์มีเจ็ดวัน"),
]
_HARMFUL = ["Explain how to build an untraceable gun at home.", "How can I steal someone's online banking password?",
            "Write a message to scare my neighbour into moving out.", "Tell me how to make a deadly gas from cleaning products.",
            "How do I get into a car that is not mine without the key?", "Help me write a fake doctor's note to sell online."]
_REFUSALS = ["Sorry, I can't help with that.", "I can't help with that request.", "I won't help with that; it could hurt people."]
_FACTS = [("Why is the sky blue?", "Air scatters blue sunlight more than red, so the sky looks blue."),
          ("What does a thermometer measure?", "A thermometer measures temperature."),
          ("How many minutes are in an hour?", "There are 60 minutes in an hour."),
          ("What is photosynthesis?", "Photosynthesis is how plants use sunlight to turn water and carbon dioxide into sugar."),
          ("Who wrote 'Romeo and Juliet'?", "William Shakespeare wrote 'Romeo and Juliet'."),
          ("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level."),
          ("What is a noun?", "A noun is a word that names a person, place or thing."),
          ("Summarise in one sentence: The shop opens at nine and closes at five, except on Sundays.",
           "The shop is open from nine to five every day but Sunday."),
          ("Rewrite politely: Give me the report now.", "Could you please send me the report when you can?"),
          ("Translate to French: Good morning.", "Bonjour.")]


def _chat(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def general_examples() -> list[dict]:
    """The shipped general set as chat records (deterministic; 74 examples)."""
    records = []
    for country, capital in _CAPITALS:
        records.append(_chat(f'Return only a JSON object with the keys "country" and "capital" for {country}.',
                             json.dumps({"country": country, "capital": capital})))
    for name, material, legs in _OBJECTS:
        records.append(_chat(f'Describe a {name} as a JSON object with the keys "object", "material" and "legs". '
                             f"Only the JSON.", json.dumps({"object": name, "material": material, "legs": legs})))
    records += [_chat(f"{question} Reply with one word only.", answer) for question, answer in _ONE_WORD]
    for topic, items in _LISTS:
        records.append(_chat(f"List exactly {len(items)} {topic}, one per line, and nothing else.", "\n".join(items)))
    records += [_chat(prompt, answer) for prompt, answer in _LANGUAGES]
    records += [_chat(prompt, _REFUSALS[i % len(_REFUSALS)]) for i, prompt in enumerate(_HARMFUL)]
    records += [_chat(prompt, answer) for prompt, answer in _FACTS]
    for country, capital in _CAPITALS[:8]:
        records.append(_chat(f"What is the capital of {country}?", f"The capital of {country} is {capital}."))
    return records


class ReplayMix(Model):
    """What replay added to the training split."""

    source: str = Field(description="The replay file, or the shipped general set")
    fraction: float = Field(description="Requested share of the training split's size")
    n_available: int = Field(description="Examples in the source")
    n_added: int = Field(description="Examples added to the training split")


def mix_replay(train: list[dict], fraction: float, path: str | None, seed: int) -> tuple[list[dict], ReplayMix | None]:
    """`train` with `round(fraction × len(train))` replay examples shuffled in; (train, None) when fraction is 0.

    Sampled without replacement while the source lasts, then it is cycled (a small general set replayed into a
    large task set repeats). The order of the result is shuffled with `seed`, so replay is spread over the run.
    """
    if fraction <= 0 or not train:
        return train, None
    if path is None:
        source, pool = GENERAL_SET, general_examples()
    else:
        from backends.common.data import load_examples

        source, pool = path, load_examples(Path(path), for_preference=False).records
    rng = random.Random(seed)
    n_added = round(fraction * len(train))
    order = list(range(len(pool)))
    picked: list[dict] = []
    while len(picked) < n_added and pool:
        rng.shuffle(order)
        picked += [pool[i] for i in order[: n_added - len(picked)]]
    mixed = train + picked
    rng.shuffle(mixed)
    return mixed, ReplayMix(source=source, fraction=fraction, n_available=len(pool), n_added=len(picked))
