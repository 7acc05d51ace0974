"""Preference pairs for the demo's SFT -> DPO variant (docs/training.md): the same support-ticket task,
a chosen answer that is the correct JSON triage and a rejected answer with a mistake a triage model
makes. Seeded like toolkit.data.synth, so the same seed gives byte-identical data everywhere.

Rejected answers, by share:
- the right JSON with the wrong priority (50 %): the subtle error, the one SFT leaves most often;
- the wrong category (25 %);
- a friendly prose reply instead of JSON (15 %): what the base model does before fine-tuning;
- JSON without the product key (10 %).
"""

from __future__ import annotations

import json
import random

from toolkit.data.synth import (_CATEGORY_REPLIES, _PRIORITY_REPLIES, CATEGORIES, PRIORITIES, SYSTEM_PROMPT, Ticket,
                                distinct_tickets)


def support_ticket_preference_records(count: int, seed: int) -> list[dict]:
    """`count` distinct preference pairs in TRL's conversational layout (prompt, chosen, rejected)."""
    rng = random.Random(seed)
    return [{"prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ticket.text}],
             "chosen": [{"role": "assistant", "content": ticket.answer_json()}],
             "rejected": [{"role": "assistant", "content": _mistake(ticket, rng)}]}
            for ticket in distinct_tickets(count, rng)]


def _mistake(ticket: Ticket, rng: random.Random) -> str:
    kind = rng.random()
    answer = {"category": ticket.category, "priority": ticket.priority, "product": ticket.product}
    if kind < 0.50:
        answer["priority"] = rng.choice([p for p in PRIORITIES if p != ticket.priority])
    elif kind < 0.75:
        answer["category"] = rng.choice([c for c in CATEGORIES if c != ticket.category])
    elif kind < 0.90:
        return " ".join(("Hello!", _CATEGORY_REPLIES[ticket.category].format(p=ticket.product),
                         _PRIORITY_REPLIES[ticket.priority]))
    else:
        del answer["product"]
    return json.dumps(answer)
