"""Write the domain-pretraining example's corpus and instruction examples (deterministic: same files every run).

The domain is a made-up one, tidal-turbine maintenance logs with their own jargon (rotor codes, seal classes,
slack-water windows), so no base model has seen it: the case for continued pretraining.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TURBINES = ["TT-3", "TT-7", "TT-11", "TT-14", "TT-19", "TT-22"]
SEALS = ["K-class", "M-class", "V-class"]
PARTS = ["yaw bearing", "pitch actuator", "nacelle cooler", "slip ring", "hub seal", "brake caliper"]
FAULTS = ["biofouling on the intake", "salt creep at the slip ring", "cavitation pitting", "seal weep",
          "bearing chatter", "cooler scaling"]
ACTIONS = ["replaced the {seal} seal", "flushed the cooler loop", "re-torqued the hub bolts to 840 Nm",
           "cleared the intake grid", "re-greased the yaw bearing", "swapped the pitch actuator"]


def log_entry(rng: random.Random, day: int) -> str:
    turbine, part, fault = rng.choice(TURBINES), rng.choice(PARTS), rng.choice(FAULTS)
    seal = rng.choice(SEALS)
    action = rng.choice(ACTIONS).format(seal=seal)
    window = rng.choice([38, 42, 45, 51, 56])
    return (f"Day {day}. {turbine} reported {fault} near the {part}. The crew waited for the slack-water window "
            f"of {window} minutes, then {action}. Rotor code after the work: R{rng.randint(10, 99)}. "
            f"{seal} seals on {turbine} are inspected every {rng.choice([14, 21, 28])} tides.")


def main() -> None:
    rng = random.Random(7)
    corpus = HERE / "corpus"
    corpus.mkdir(exist_ok=True)
    for month in range(1, 7):
        entries = [log_entry(rng, day) for day in range(1, 29)]
        (corpus / f"log-2025-{month:02d}.md").write_text(f"# Maintenance log, month {month}\n\n"
                                                         + "\n\n".join(entries) + "\n", encoding="utf-8")
    (corpus / "glossary.txt").write_text(
        "Slack-water window: the minutes around the turn of the tide when divers can work on a turbine.\n"
        "Seal classes: K-class seals are nitrile, M-class are fluorocarbon, V-class are for the high-flow sites.\n"
        "Rotor code: the balance grade after service, R10 (best) to R99 (retire the rotor).\n", encoding="utf-8")
    with (HERE / "sft.jsonl").open("w", encoding="utf-8") as out:
        for _ in range(40):
            turbine, fault, seal = rng.choice(TURBINES), rng.choice(FAULTS), rng.choice(SEALS)
            record = {"instruction": f"Summarise the fault on {turbine}: {fault}, {seal} seal fitted.",
                      "output": f"{turbine}: {fault}; seal {seal}; plan the work in the next slack-water window."}
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
