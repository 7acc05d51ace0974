"""The offline general-capability probe: multiple-choice questions in MMLU's exact layout
(question, subject, choices, answer), written by `toolkit data synth-mmlu` into
eval_suites/mmlu_local/data/. Four subjects from the embedded domain and plain arithmetic, so that
forgetting shows as an accuracy drop. Kept apart from synth.py so that the base model (built from
synth.py) does not depend on it.
"""

from __future__ import annotations

import random

from toolkit.data.synth import _PROBLEMS, _URGENCY, CATEGORIES, PRIORITIES, PRODUCTS

MMLU_SUBJECTS = ("support_category", "support_priority", "product_catalog", "arithmetic")
_FAKE_PRODUCTS = ("Quasar Toaster", "Helix Mouse", "Comet Blanket", "Drift Scooter", "Ember Heater", "Pulse Radio",
                  "Sable Mug", "Tundra Tent", "Glint Mirror", "Cedar Desk")


def mmlu_layout_items(per_subject: int, seed: int) -> dict[str, list[dict]]:
    """A general-capability probe in MMLU's exact layout (question, subject, choices, answer): four
    subjects from the embedded domain and plain arithmetic, so forgetting shows as an accuracy drop.
    Questions are phrased unlike the tickets, so decontamination finds no 13-word passage in common."""
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {subject: [] for subject in MMLU_SUBJECTS}
    for _ in range(per_subject):
        category = rng.choice(CATEGORIES)
        # "device", not a product name: no 13-word passage of a question can then match a ticket.
        problem = rng.choice(_PROBLEMS[category]).format(p="device").rstrip(".?")
        out["support_category"].append(_choice_item(
            f'Which team handles a ticket saying "{problem}"?', "support_category", list(CATEGORIES), category, rng))
        priority = rng.choice(PRIORITIES)
        cue = rng.choice([c for c in _URGENCY[priority] if c])
        out["support_priority"].append(_choice_item(
            f'How urgent is a ticket that ends with "{cue}"?', "support_priority", [*PRIORITIES, "none"], priority, rng))
        product = rng.choice(PRODUCTS)
        options = [product, *rng.sample(_FAKE_PRODUCTS, 3)]
        out["product_catalog"].append(_choice_item(
            "Which of these products does the shop sell?", "product_catalog", options, product, rng))
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        wrong = rng.sample([n for n in range(a + b - 9, a + b + 10) if n != a + b and n > 0], 3)
        out["arithmetic"].append(_choice_item(f"What is {a} + {b}?", "arithmetic", [str(a + b), *map(str, wrong)],
                                              str(a + b), rng))
    return out


def _choice_item(question: str, subject: str, options: list[str], correct: str, rng: random.Random) -> dict:
    options = options[:]
    rng.shuffle(options)
    return {"question": question, "subject": subject, "choices": options, "answer": options.index(correct)}
