"""What preference tuning changes, measured on held-out preference or KTO records, base vs adapter.

Generation metrics alone miss it: DPO / ORPO move probability from the rejected answer to the chosen
one, often without changing the greedy output. So for each held-out pair both answers are scored
by the model's own log-likelihood (the sum over the answer's tokens after the chat-templated prompt,
as TRL computes it), with the adapter disabled (base) and enabled (adapter):

- preference_accuracy: 1 when the chosen answer is the likelier one; base vs adapter, paired, with
  McNemar's test. Does the adapter rank the chosen answer first more often than the base?
- logprob_margin: log p(chosen) - log p(rejected); the paired delta is the implicit DPO reward margin
  (without beta): by how much the adapter prefers the chosen answer more than the base did.

For KTO records (one completion with a label) the mean per-token log-likelihood of the completion,
base vs adapter, separately for desirable_logprob (it should rise) and undesirable_logprob (it
should fall).
"""

from __future__ import annotations

import contextlib

from toolkit.evals.generation import adapter_disabled

PAIR_METRICS = ("preference_accuracy", "logprob_margin")
KTO_METRICS = ("desirable_logprob", "undesirable_logprob")
METRICS = PAIR_METRICS + KTO_METRICS
LOWER_IS_BETTER = ("undesirable_logprob",)   # an undesirable completion should become less likely
BINARY = ("preference_accuracy",)             # right/wrong per item: McNemar's test applies


def tokenize_answers(tokenizer, prompts: list[list[dict]], answers: list[str]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, answer ids) of each answer after its chat-templated prompt, split as TRL splits them."""
    sequences = []
    for messages, answer in zip(prompts, answers):
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
        completion = full[len(prompt):] if full.startswith(prompt) else answer
        sequences.append((tokenizer(prompt, add_special_tokens=False)["input_ids"],
                          tokenizer(completion, add_special_tokens=False)["input_ids"]))
    return sequences


def answer_logprobs(model, tokenizer, sequences: list[tuple[list[int], list[int]]],
                    batch_size: int) -> list[tuple[float, int]]:
    """(sum of log-probabilities, token count) of each tokenized answer after its prompt."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results: list[tuple[float, int]] = []
    model.eval()
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start:start + batch_size]
        width = max(len(p) + len(a) for p, a in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (p, a) in enumerate(batch):          # right padding: positions stay those of training
            ids[row, :len(p) + len(a)] = torch.tensor(p + a)
            mask[row, :len(p) + len(a)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for row, (p, a) in enumerate(batch):
                # Only the answer's positions: a full-vocabulary softmax over the whole batch would
                # hold batch x length x vocabulary floats (GBs for a 128k vocabulary).
                answer_logits = logits[row, len(p) - 1:len(p) + len(a) - 1].float()
                targets = torch.tensor(a, device=device)
                chosen = answer_logits.log_softmax(-1).gather(-1, targets[:, None]).sum()
                results.append((float(chosen), len(a)))
    return results


def preference_scores(model, tokenizer, items, batch_size: int) -> dict[str, list[dict]]:
    """metric -> one {"index", "base", "adapter"} per item it applies to (as score_items gives)."""
    pairs = [(i, item) for i, item in enumerate(items) if item.chosen is not None and item.rejected is not None]
    labelled = [(i, item) for i, item in enumerate(items) if item.label is not None and item.completion is not None]
    if not pairs and not labelled:
        return {}
    # Tokenized once; each side is one forward pass over the same ids.
    tokenized = {
        "chosen": tokenize_answers(tokenizer, [it.messages for _, it in pairs], [it.chosen for _, it in pairs]),
        "rejected": tokenize_answers(tokenizer, [it.messages for _, it in pairs], [it.rejected for _, it in pairs]),
        "completion": tokenize_answers(tokenizer, [it.messages for _, it in labelled],
                                       [it.completion for _, it in labelled]),
    }
    sides: dict[str, dict] = {}
    for side in ("base", "adapter"):
        with adapter_disabled(model) if side == "base" else contextlib.nullcontext():
            sides[side] = {name: answer_logprobs(model, tokenizer, sequences, batch_size)
                           for name, sequences in tokenized.items()}
    scores: dict[str, list[dict]] = {name: [] for name in METRICS}
    for k, (index, _) in enumerate(pairs):
        margins = {side: sides[side]["chosen"][k][0] - sides[side]["rejected"][k][0] for side in sides}
        scores["logprob_margin"].append({"index": index, **margins})
        scores["preference_accuracy"].append({"index": index, **{s: float(m > 0) for s, m in margins.items()}})
    for k, (index, item) in enumerate(labelled):
        per_token = {side: sides[side]["completion"][k][0] / max(sides[side]["completion"][k][1], 1) for side in sides}
        scores["desirable_logprob" if item.label else "undesirable_logprob"].append({"index": index, **per_token})
    return {name: rows for name, rows in scores.items() if rows}
