"""Batched generation (left padding, length-sorted batches, KV cache) gives exactly the one-by-one outputs."""

import pytest

from conftest import tiny_random_llama
from toolkit.evals.generation import adapter_disabled, generate, render_prompts


@pytest.fixture(scope="module")
def tiny_model_and_tokenizer(tiny_tokenizer):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer)
    base = tiny_random_llama(tokenizer, hidden_size=64, max_positions=256).eval()
    model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    return model.eval(), tokenizer


def _prompts(tokenizer):
    texts = ["hi", "my order has not arrived yet and I am waiting since Monday", "refund?",
             "the kettle is broken " * 6, "x", "Hello support, the router restarts every hour, what can I do?",
             "ünïcödé 😟 ticket", "a b c d e f g"]
    return render_prompts(tokenizer, ([{"role": "user", "content": t}] for t in texts))


@pytest.mark.parametrize("batch_size", [3, 8])
def test_batched_outputs_equal_one_by_one_outputs(tiny_model_and_tokenizer, batch_size):
    model, tokenizer = tiny_model_and_tokenizer
    prompts = _prompts(tokenizer)
    one_by_one = generate(model, tokenizer, prompts, max_new_tokens=24, batch_size=1)
    batched = generate(model, tokenizer, prompts, max_new_tokens=24, batch_size=batch_size)
    assert batched == one_by_one
    assert len(set(one_by_one)) > 1 and all(one_by_one)   # real, differing outputs, not empty strings
    with adapter_disabled(model):
        base_one = generate(model, tokenizer, prompts, max_new_tokens=24, batch_size=1)
        base_batched = generate(model, tokenizer, prompts, max_new_tokens=24, batch_size=batch_size)
    assert base_batched == base_one
    assert base_one != one_by_one   # the adapter (random, non-zero B) changes the outputs


def test_meter_counts_prompt_and_new_tokens(tiny_model_and_tokenizer):
    model, tokenizer = tiny_model_and_tokenizer
    prompts = _prompts(tokenizer)[:3]
    meter: dict = {}
    generate(model, tokenizer, prompts, max_new_tokens=5, batch_size=2, meter=meter)
    assert meter["prompt_tokens"] == sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    assert 3 <= meter["new_tokens"] <= 15 and meter["wall_s"] > 0
