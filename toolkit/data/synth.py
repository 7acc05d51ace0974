"""The embedded default task: support tickets -> structured JSON triage.

Everything here is generated from a seeded random.Random, so the same seed gives byte-identical
data on every machine. Two generators share the vocabulary of the domain:
- `support_ticket_records`: the fine-tuning dataset (system prompt, ticket, JSON answer);
- `pretraining_corpus`: what the builtin base model is pre-trained on: help-centre prose and chats
  where the assistant answers tickets in friendly prose, never in JSON. So the base model knows the
  domain but not the output format, and fine-tuning has something real to teach.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Iterator

CATEGORIES = ("billing", "shipping", "technical", "account")
PRIORITIES = ("low", "normal", "high")
PRODUCTS = (
    "Nimbus Router", "Aurora Lamp", "Pico Speaker", "Atlas Backpack", "Vega Headphones", "Orbit Kettle",
    "Zephyr Fan", "Lumen Camera", "Terra Blender", "Nova Watch", "Echo Keyboard", "Polar Jacket",
)

SYSTEM_PROMPT = (
    "You triage customer support tickets. Reply with JSON only, using the keys "
    "category (billing, shipping, technical or account), priority (low, normal or high) and product."
)

_PROBLEMS = {
    "billing": (
        "I was charged twice for my {p}.",
        "the invoice for my {p} shows the wrong amount.",
        "my card was billed for a {p} I never ordered.",
        "I need a copy of the receipt for my {p}.",
        "the discount code was not applied when I paid for the {p}.",
        "I see an extra payment for the {p} on my bank statement.",
        "the price of the {p} changed after I paid.",
    ),
    "shipping": (
        "my {p} has not arrived yet.",
        "the tracking number for my {p} does not work.",
        "the {p} was delivered to the wrong address.",
        "the box with my {p} arrived crushed.",
        "the courier says the {p} was delivered but I never got it.",
        "my {p} is stuck at the depot for a week.",
        "can I change the delivery address for my {p}?",
    ),
    "technical": (
        "my {p} stopped working after the update.",
        "the {p} will not turn on any more.",
        "my {p} keeps restarting by itself.",
        "the app cannot connect to my {p}.",
        "the {p} makes a loud noise when I use it.",
        "the battery of my {p} drains in an hour.",
        "the {p} shows an error light and does nothing.",
    ),
    "account": (
        "I cannot log in to the account I used to buy my {p}.",
        "please change the email address on the account for my {p}.",
        "I forgot the password for the account with my {p}.",
        "I want to delete my account, I only bought a {p}.",
        "my account was locked after I registered my {p}.",
        "I need to merge two accounts, one has my {p}.",
        "the account page does not show my {p} order.",
    ),
}

_URGENCY = {
    "low": (
        "No rush at all.", "Whenever you have time.", "It is not urgent.", "Just letting you know.",
        "Take your time with this.", "",
    ),
    "normal": (
        "Could you look into it?", "Please let me know what to do.", "I would appreciate your help.",
        "Can you help me with this?", "What are my options?",
    ),
    "high": (
        "This is urgent, please fix it today!", "I need this solved immediately.",
        "Please help asap, this is very urgent.", "I am really upset and need an answer now!",
        "This is the third time I write, fix it right away!",
    ),
}

_GREETINGS = ("Hi,", "Hello,", "Dear support,", "Hey team,", "Good morning,", "Hi there,", "Hello support team,", "")
_OPENERS = ("", "I ordered last month and ", "Quick question: ", "Sorry to bother you, but ", "Since Monday ",
            "As I said on the phone, ", "I have a problem: ")
_SIGNOFFS = ("Thanks", "Best regards", "Cheers", "Thank you", "Kind regards", "")
_NAMES = ("Anna", "Luca", "Sofia", "Jonas", "Marie", "Pieter", "Elena", "Mateo", "Ines", "Karl", "Nora", "Tomas",
          "Lea", "Oskar", "Clara", "Milan", "Eva", "Hugo", "Ida", "Felix")

_CATEGORY_REPLIES = {
    "billing": "I am sorry about the trouble with your payment for the {p}. Our billing team will check the charge and correct it.",
    "shipping": "I am sorry that your {p} is delayed. I have asked the courier for an update on the delivery.",
    "technical": "I am sorry that your {p} is not working as it should. Please try a restart, and we will send a repair guide.",
    "account": "I am sorry about the trouble with your account. I have reset the access so you can sign in again.",
}
_PRIORITY_REPLIES = {
    "low": "There is no need to worry, we will handle it this week.",
    "normal": "We will get back to you within two days.",
    "high": "I have marked your case as urgent and we will reply today.",
}
_KB_SENTENCES = (
    "The {p} comes with a two year warranty.",
    "Orders of the {p} usually ship within three days.",
    "To reset the {p}, hold the power button for ten seconds.",
    "Invoices for the {p} are sent by email after payment.",
    "Customers can track their {p} order on the account page.",
    "If the {p} arrives damaged, keep the box and write to support.",
    "The {p} can be returned within thirty days for a full refund.",
    "Support answers urgent tickets first and other tickets in order.",
    "A password can be changed on the account settings page.",
    "Billing questions are handled by the finance team.",
    "The courier leaves a note when nobody is at home.",
    "Firmware updates for the {p} are installed automatically.",
)
_GENERIC_CHATS = (
    ("Hello!", "Hello! How can I help you today?"),
    ("What are your opening hours?", "Our support team is available from eight in the morning to six in the evening."),
    ("Thank you for your help.", "You are welcome! Have a nice day."),
    ("Can I return an item?", "Yes, items can be returned within thirty days for a full refund."),
    ("How do I change my password?", "You can change your password on the account settings page."),
    ("Do you ship abroad?", "Yes, we ship to most countries in Europe."),
)


@dataclass(frozen=True)
class Ticket:
    text: str
    category: str
    priority: str
    product: str
    customer: str

    def answer_json(self) -> str:
        return json.dumps({"category": self.category, "priority": self.priority, "product": self.product})


def _ticket(rng: random.Random) -> Ticket:
    category = rng.choice(CATEGORIES)
    priority = rng.choice(PRIORITIES)
    product = rng.choice(PRODUCTS)
    problem = rng.choice(_PROBLEMS[category]).format(p=product)
    opener = rng.choice(_OPENERS)
    if opener and not problem.startswith("I "):
        problem = problem[0].lower() + problem[1:]
    parts = [rng.choice(_GREETINGS), opener + problem, rng.choice(_URGENCY[priority])]
    signoff, customer = rng.choice(_SIGNOFFS), rng.choice(_NAMES)
    if signoff:
        parts.append(f"{signoff}, {customer}")
    else:
        customer = ""
    return Ticket(" ".join(p for p in parts if p), category, priority, product, customer)


def distinct_tickets(count: int, rng: random.Random) -> Iterator[Ticket]:
    """`count` tickets with distinct texts, drawn from rng (a caller may draw more from it between
    tickets: the data stays the same for the same seed)."""
    seen: set[str] = set()
    attempts = 0
    while len(seen) < count:
        attempts += 1
        if attempts > count * 50:
            raise ValueError(f"cannot generate {count} distinct tickets; the template space is too small")
        ticket = _ticket(rng)
        if ticket.text not in seen:
            seen.add(ticket.text)
            yield ticket


def support_ticket_records(count: int, seed: int) -> list[dict]:
    """`count` distinct chat records (system, user ticket, assistant JSON)."""
    return [{"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": ticket.text},
                          {"role": "assistant", "content": ticket.answer_json()}]}
            for ticket in distinct_tickets(count, random.Random(seed))]


def pretraining_corpus(count: int, seed: int) -> list[str | list[dict]]:
    """Help-centre prose and JSON order records (str) and prose support chats (message lists)."""
    rng = random.Random(seed)
    corpus: list[str | list[dict]] = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.35:
            # A help-centre page is about one product, so its name recurs (what teaches a model to copy).
            product = rng.choice(PRODUCTS)
            sentences = [s.format(p=product) for s in rng.sample(_KB_SENTENCES, rng.randint(2, 5))]
            corpus.append(" ".join(sentences))
        elif kind < 0.45:
            # Order records as JSON: real base models have seen plenty of JSON, just not this task's schema.
            record = {"order": rng.randint(10000, 99999), "product": rng.choice(PRODUCTS),
                      "status": rng.choice(("paid", "shipped", "delivered", "returned")), "quantity": rng.randint(1, 3)}
            corpus.append(json.dumps(record))
        elif kind < 0.55:
            question, answer = rng.choice(_GENERIC_CHATS)
            corpus.append([{"role": "user", "content": question}, {"role": "assistant", "content": answer}])
        else:
            ticket = _ticket(rng)
            reply = " ".join((
                f"Hello, {ticket.customer}!" if ticket.customer else "Hello!",
                _CATEGORY_REPLIES[ticket.category].format(p=ticket.product),
                _PRIORITY_REPLIES[ticket.priority],
            ))
            messages = [{"role": "user", "content": ticket.text}, {"role": "assistant", "content": reply}]
            if rng.random() < 0.5:
                messages.insert(0, {"role": "system", "content": "You are a friendly customer support assistant."})
            corpus.append(messages)
    return corpus
