"""Small records for tests: support tickets the validate tests build projects from, and the per-item
outputs the judge reads."""

import json

PRODUCTS = ["kettle", "lamp", "router", "speaker", "watch", "camera", "fan", "blender"]
PROBLEMS = ["stopped working after the update", "arrived with a cracked case", "was charged twice on my card",
            "never arrived although tracking says delivered", "makes a loud buzzing noise at night"]


def ticket(i: int, answer: str | None = None) -> dict:
    text = f"Ticket {i}: my {PRODUCTS[i % 8]} {PROBLEMS[i % 5]}, reference {i * 7919 % 10007}."
    return {"messages": [{"role": "user", "content": text},
                         {"role": "assistant", "content": answer or json.dumps({"product": PRODUCTS[i % 8]})}]}


def judge_items(n: int, adapter="GOOD answer", base="weak answer", special: dict | None = None) -> list[dict]:
    rows = []
    for i in range(n):
        text = (special or {}).get(i, "")
        rows.append({"index": i, "input": [{"role": "user", "content": f"ticket {i} {text}"}], "reference": "ref",
                     "base_output": f"{base} {i}", "adapter_output": f"{adapter} {i}"})
    return rows
