"""Padding-free batches are exact: per-example losses and LoRA gradients equal those of the padded
batch (fp32, 1e-5), examples never attend across a boundary, and `train.packing: auto` picks them
for SFT only where the attention keeps examples apart. The batches come from TRL's own SFT data
preparation (assistant-only loss on chat rows; completion-only loss on prompt/completion rows)."""

import pytest

from toolkit.config import TrainParams
from toolkit.errors import ConfigError
from toolkit.train.packing import PaddingFreeCollator, choose_packing

WORDS = "router billing parcel refund password kettle invoice delivery account outage".split()


def chat_rows(lengths: list[int]) -> list[dict]:
    rows = []
    for i, n in enumerate(lengths):
        question = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n))
        rows.append({"messages": [{"role": "system", "content": "Triage."}, {"role": "user", "content": question},
                                  {"role": "assistant", "content": f'{{"category": "{WORDS[i % len(WORDS)]}"}}'}]})
    return rows


def completion_rows(lengths: list[int]) -> list[dict]:
    return [{"prompt": " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n)), "completion": f" {WORDS[i]} done"}
            for i, n in enumerate(lengths)]


LENGTHS = [3, 17, 8, 30, 1, 12]


@pytest.fixture(params=["assistant_only", "completion_only"])
def prepared(request, tiny_base, tmp_path):
    """(LoRA model with non-zero B, tokenized examples as TRL prepared them, pad id)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32, attn_implementation="sdpa")
    chat = request.param == "assistant_only"
    rows = chat_rows(LENGTHS) if chat else completion_rows(LENGTHS)
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", max_length=128,
                     assistant_only_loss=chat, shuffle_dataset=False)
    trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
                         peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
    examples = [trainer.train_dataset[i] for i in range(len(rows))]
    assert len({len(e["input_ids"]) for e in examples}) == len(rows)          # all lengths differ
    assert all(-100 in e["labels"] and any(t != -100 for t in e["labels"]) for e in examples)  # prompts masked
    peft_model = trainer.model
    torch.manual_seed(1)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:   # B starts at zero, which would leave A without a gradient
            param.data.normal_(0, 0.05)
    peft_model.eval()   # no dropout: the two layouts must see the same function
    return peft_model, examples, tokenizer.pad_token_id


def _padded(examples, pad_id):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(pad_token_id=pad_id)(examples)


def _token_losses(model, batch):
    """Per row, the cross-entropy of each predicted label token (position -> loss), and the logits."""
    import torch

    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    logits = out.logits[:, :-1]
    labels = batch["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
    return losses * (labels != -100), labels != -100, out.logits


def _example_spans(batch, examples):
    """(row, start, length) of each example in a padding-free batch, found from position_ids."""
    by_content = {}
    positions = batch["position_ids"]
    for row in range(positions.shape[0]):
        for start in (i for i in range(positions.shape[1]) if positions[row, i] == 0):
            length = 1
            while start + length < positions.shape[1] and positions[row, start + length] == length:
                length += 1
            by_content[tuple(batch["input_ids"][row, start:start + length].tolist())] = (row, start, length)
    return [by_content[tuple(e["input_ids"])] for e in examples]


def _per_example_and_grads(model, batch, spans):
    losses, mask, _ = _token_losses(model, batch)
    per_example = [losses[row, start:start + length - 1].sum().item() for row, start, length in spans]
    model.zero_grad()
    (losses.sum() / mask.sum()).backward()   # the trainer's loss: mean over the batch's label tokens
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return per_example, grads, int(mask.sum())


@pytest.mark.parametrize("one_row", [True, False])
def test_padding_free_losses_and_lora_gradients_equal_the_padded_batch(prepared, one_row):
    model, examples, pad_id = prepared
    padded = _padded(examples, pad_id)
    packed = PaddingFreeCollator(pad_id, one_row)(examples)
    assert "attention_mask" not in packed
    if not one_row:   # several rows, some holding more than one example, and less padding than the padded batch
        assert 1 < packed["input_ids"].shape[0] < len(examples)
        assert packed["input_ids"].numel() < padded["input_ids"].numel()
    padded_spans = [(i, 0, len(e["input_ids"])) for i, e in enumerate(examples)]
    want, want_grads, want_tokens = _per_example_and_grads(model, padded, padded_spans)
    got, got_grads, got_tokens = _per_example_and_grads(model, packed, _example_spans(packed, examples))
    assert got_tokens == want_tokens
    assert got == pytest.approx(want, abs=1e-5, rel=1e-5)
    assert want_grads.keys() == got_grads.keys() and len(want_grads) > 0
    for name, grad in want_grads.items():
        assert grad.abs().max() > 0, name
        assert (got_grads[name] - grad).abs().max().item() <= 1e-5, name


def test_an_example_never_sees_its_neighbour_in_a_row(prepared):
    import torch

    model, examples, pad_id = prepared
    collate = PaddingFreeCollator(pad_id, one_row=True)   # every example beside another
    first, second = examples[0], examples[1]
    batch = collate([first, second])
    changed_ids = list(first["input_ids"])
    changed_ids[2] = (changed_ids[2] + 7) % 100 + 3
    changed = collate([{**first, "input_ids": changed_ids}, second])
    split = len(first["input_ids"])
    with torch.no_grad():
        before = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        after = model(input_ids=changed["input_ids"], position_ids=changed["position_ids"]).logits
        # The control: the same row with a plain all-ones mask lets the second example see the first.
        leaky_before = model(input_ids=batch["input_ids"], attention_mask=torch.ones_like(batch["input_ids"])).logits
        leaky_after = model(input_ids=changed["input_ids"], attention_mask=torch.ones_like(changed["input_ids"])).logits
    assert not torch.equal(before[0, 2:split], after[0, 2:split])          # the change is seen where it should be
    assert torch.equal(before[0, split:], after[0, split:])                # and nowhere in the next example
    assert not torch.allclose(leaky_before[0, split:], leaky_after[0, split:])


def test_rows_are_first_fit_decreasing_and_never_longer_than_the_padded_batch():
    collate = PaddingFreeCollator(0, one_row=False)
    examples = [{"input_ids": list(range(1, n + 1))} for n in (7, 3, 5, 2, 12)]
    batch = collate(examples)
    # Rows as long as the longest example (12): [12] | [7, 5] | [3, 2], in the batch's order; 36 tokens, not 60.
    assert batch["input_ids"].tolist() == [list(range(1, 13)),
                                           list(range(1, 8)) + list(range(1, 6)),
                                           [1, 2, 3, 1, 2] + [0] * 7]
    assert batch["position_ids"][2].tolist() == [0, 1, 2, 0, 1] + [0] * 7
    assert batch["labels"][1].tolist() == [-100] + list(range(2, 8)) + [-100] + list(range(2, 6))
    assert batch["labels"][2, 5:].eq(-100).all()
    # Lengths alike: packing would not save 10 % of the tokens, so the batch goes padded (the same loss).
    alike = collate([{"input_ids": list(range(1, n + 1))} for n in (10, 11, 12)])
    assert alike["attention_mask"].tolist() == [[1] * 10 + [0] * 2, [1] * 11 + [0], [1] * 12]
    assert alike["labels"][0].tolist() == list(range(1, 11)) + [-100] * 2 and "position_ids" not in alike


def test_auto_packs_sft_where_the_attention_keeps_examples_apart_and_says_why():
    sdpa = choose_packing("auto", "sft", "sdpa", 256)
    assert sdpa.mode == "padding_free" and not sdpa.one_row and "sdpa" in sdpa.reason
    flash = choose_packing("auto", "sft", "flash_attention_2", 256)
    assert flash.mode == "padding_free" and flash.one_row and "one row" in flash.rows
    other = choose_packing("auto", "sft", "some_kernel", 256)
    assert other.mode == "none" and other.collator(0) is None and "some_kernel" in other.reason
    dpo = choose_packing("auto", "dpo", "sdpa", 256)
    assert dpo.mode == "none" and "no exact padding-free mode" in dpo.reason
    assert choose_packing("none", "sft", "sdpa", 256).mode == "none"
    assert choose_packing("bfd", "sft", "sdpa", 256).mode == "bfd"
    assert TrainParams().packing == "auto"


@pytest.mark.parametrize("setting, method, attention", [("padding_free", "dpo", "sdpa"), ("bfd", "kto", "sdpa"),
                                                        ("padding_free", "sft", "some_kernel")])
def test_packing_that_cannot_be_exact_is_refused(setting, method, attention):
    with pytest.raises(ConfigError) as caught:
        choose_packing(setting, method, attention, 256)
    assert caught.value.key == "train.packing"


def test_a_padding_free_run_follows_the_padded_run_step_by_step(tmp_path, tiny_base, monkeypatch):
    """The whole train stage, `auto` against `none`: the same optimizer steps, the same losses (to
    float rounding of the different shapes), and the report says which was used."""
    from training_runs import make_project, train_in

    packed_batches = []
    original = PaddingFreeCollator._packed
    monkeypatch.setattr(PaddingFreeCollator, "_packed", lambda self, *a: packed_batches.append(1) or original(self, *a))

    rows, validation = chat_rows([2, 3, 30, 4, 2, 5, 1, 3] * 3), chat_rows([5, 26, 1, 3])
    reports = {}
    for setting in ("none", "auto"):
        root = tmp_path / setting
        params = make_project(root, tiny_base, rows, validation, epochs=2, packing=setting, batch_size=6,
                              max_length=128)
        reports[setting], _ = train_in(root, params)
    padded, packed = reports["none"], reports["auto"]
    assert packed.packing["mode"] == "padding_free" and "sdpa" in packed.packing["reason"]
    assert padded.packing["mode"] == "none" and packed.kernels == {"in_use": [], "reason": "no CUDA device: Liger's kernels are Triton GPU kernels"}
    assert packed.optimizer_steps == padded.optimizer_steps == 8
    assert len(packed_batches) >= 5   # most of the 8 batches really went without padding
    assert packed.tokens_seen == padded.tokens_seen   # non-padding tokens, counted the same way in both
    assert [h["loss"] for h in packed.loss_history] == pytest.approx([h["loss"] for h in padded.loss_history], rel=1e-4)
    assert packed.validation_loss == pytest.approx(padded.validation_loss, rel=1e-4)


def test_fused_kernels_only_on_cuda_with_liger_installed_and_for_sft():
    from toolkit.errors import UnsupportedHardwareError
    from toolkit.train.kernels import choose_kernels

    on_gpu = choose_kernels("auto", "sft", on_cuda=True, installed=True)
    assert on_gpu.liger and on_gpu.training_args()["use_liger_kernel"]
    assert on_gpu.training_args()["liger_kernel_config"]["fused_linear_cross_entropy"] is False  # TRL's own LM head
    assert on_gpu.as_dict()["in_use"] == ["liger:rms_norm", "liger:rope", "liger:swiglu"]
    for kernels in (choose_kernels("auto", "sft", on_cuda=False, installed=True),
                    choose_kernels("auto", "sft", on_cuda=True, installed=False),
                    choose_kernels("auto", "dpo", on_cuda=True, installed=True),
                    choose_kernels("none", "sft", on_cuda=True, installed=True)):
        assert not kernels.liger and kernels.training_args() == {} and kernels.as_dict()["in_use"] == []
    assert "no CUDA" in choose_kernels("auto", "sft", on_cuda=False).reason
    with pytest.raises(UnsupportedHardwareError):
        choose_kernels("liger", "sft", on_cuda=False, installed=True)
    with pytest.raises(ConfigError):
        choose_kernels("liger", "sft", on_cuda=True, installed=False)
