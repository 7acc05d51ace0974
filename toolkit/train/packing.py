"""Padding-free batches for SFT: the same examples per optimizer step as the padded recipe, without
computing on padding.

A padded batch of examples of different lengths spends compute on pad tokens. Here the examples of
each batch are laid end to end in rows, each example restarting its `position_ids` at 0 and with no
attention mask; transformers (`masking_utils.find_packed_sequence_indices`) then builds a
block-diagonal causal mask from the position ids under SDPA and eager attention, and FlashAttention
takes the rows as variable-length sequences. An example never attends to another, the label of each
example's first token is ignored (it would be predicted from the previous example), and the loss is
the mean over the same label tokens as in the padded batch: the losses and the gradients are those
of the padded batch (tests/train/test_packing.py checks it to 1e-5 in fp32).

Rows: with FlashAttention all of a batch's examples go into one row (varlen kernels cost nothing
across boundaries). With SDPA or eager attention a row costs its length squared in attention, so
the examples are placed first-fit decreasing into rows as long as the batch's longest example: never
longer than the padded batch's rows, and never more of them. A batch that this would not shrink by
at least 10 % of its computed tokens (lengths alike, as in the demo's tickets) goes as the plain
padded batch: the same loss, without the cost of building a block-diagonal mask.

`train.packing: auto` uses this for SFT wherever the attention implementation keeps examples apart.
TRL's DPO, KTO and ORPO trainers have no exact padding-free mode (TRL 1.16: DPOTrainer's
`padding_free` warns and falls back to padding), so preference methods are padded and say so.
`bfd` is TRL's dataset packing: several examples per row of `max_length`, which changes how many
examples an optimizer step sees (a different recipe, not the same one faster).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.errors import ConfigError

# Attention implementations for which transformers keeps packed examples apart from position_ids.
SEPARATING_ATTENTION = {"sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention"}
ONE_ROW_ATTENTION = {"flash_attention_2", "flash_attention_3"}


@dataclass(frozen=True)
class Packing:
    mode: str                    # padding_free | bfd | none
    rows: str | None             # how the rows are laid out, in words
    reason: str
    one_row: bool = False        # padding_free: the whole batch in one row (FlashAttention varlen)

    def as_dict(self) -> dict:
        return {"mode": self.mode, "rows": self.rows, "reason": self.reason}

    def collator(self, pad_token_id: int):
        """The padding-free collator, or None: the trainer's own (padding)."""
        return PaddingFreeCollator(pad_token_id, self.one_row) if self.mode == "padding_free" else None


def choose_packing(setting: str, method: str, attention: str, max_length: int) -> Packing:
    """What `train.packing` means for this method and attention implementation."""
    if method != "sft":
        if setting in ("padding_free", "bfd"):
            raise ConfigError(f"train.packing {setting} is for SFT: TRL's {method.upper()} trainer has no exact "
                              "padding-free mode; use auto or none", file="params.yaml", key="train.packing")
        return Packing("none", None, f"padded: TRL's {method.upper()} trainer has no exact padding-free mode")
    if setting == "none":
        return Packing("none", None, "padded: train.packing is none")
    if setting == "bfd":
        return Packing("bfd", f"examples packed into rows of {max_length} tokens across the dataset (TRL bfd)",
                       "train.packing is bfd")
    if attention not in SEPARATING_ATTENTION:
        if setting == "padding_free":
            raise ConfigError(f"train.packing padding_free needs an attention implementation that keeps packed "
                              f"examples apart ({', '.join(sorted(SEPARATING_ATTENTION))}); the model uses "
                              f"{attention}", file="params.yaml", key="train.packing")
        return Packing("none", None, f"padded: {attention} attention does not keep packed examples apart")
    one_row = attention in ONE_ROW_ATTENTION
    rows = ("one row per batch (FlashAttention varlen)" if one_row else "rows as long as the batch's longest example "
            "(the padded batch where that saves under 10 % of the tokens)")
    return Packing("padding_free", rows, f"{attention} attention keeps packed examples apart (block-diagonal "
                   "mask from position_ids): same batches and loss as padding, without computing on padding", one_row)


class PaddingFreeCollator:
    """Collates tokenized SFT examples ({input_ids, labels}) into padding-free rows. One row, and the
    plain padded batch where packing would not save at least `min_saving` of the computed tokens,
    are TRL's own collator (its one-row output also carries FlashAttention's sequence boundaries);
    several rows of a batch are laid out here (both layouts give the same loss)."""

    def __init__(self, pad_token_id: int, one_row: bool, min_saving: float = 0.1):
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        self.pad_token_id, self.one_row, self.min_saving = pad_token_id, one_row, min_saving
        self.trl_collator = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=one_row)

    def __call__(self, examples: list[dict]) -> dict:
        if self.one_row:
            return self.trl_collator(examples)
        lengths = [len(e["input_ids"]) for e in examples]
        rows = first_fit_decreasing(lengths, max(lengths))
        width = max(sum(lengths[i] for i in row) for row in rows)
        if len(rows) * width > (1 - self.min_saving) * len(examples) * max(lengths):
            return self.trl_collator(examples)   # padded
        return self._packed(examples, rows, width)

    def _packed(self, examples: list[dict], rows: list[list[int]], width: int) -> dict:
        import torch

        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        # Padding gets position 0 everywhere: each pad token is a segment of its own, attending to nothing real.
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for i in row:
                ids = examples[i]["input_ids"]
                n = len(ids)
                input_ids[r, at:at + n] = torch.as_tensor(ids)
                labels[r, at:at + n] = torch.as_tensor(examples[i].get("labels", ids))
                labels[r, at] = -100   # would be predicted from the previous example's last token
                position_ids[r, at:at + n] = torch.arange(n)
                at += n
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


def first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Example indexes placed into rows of `capacity` tokens, longest first; batch order kept within a row."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        slot = next((r for r, left in enumerate(room) if left >= lengths[i]), None)
        if slot is None:
            rows.append([])
            room.append(capacity)
            slot = len(rows) - 1
        rows[slot].append(i)
        room[slot] -= lengths[i]
    return [sorted(row) for row in rows]
