"""The builtin base model: a tiny Llama-architecture LM built deterministically on CPU.

Steps: generate the pre-training corpus (toolkit.data.synth), train a byte-level BPE tokenizer on
it, initialise a Llama model from a fixed seed, pre-train it briefly on the corpus, save it as
safetensors with the tokenizer and chat template. Same parameters and seed -> same files on the
same platform.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit.config import BuiltinBaseParams
from toolkit.data.synth import pretraining_corpus
from toolkit.train.chat_template import BOS, CHAT_TEMPLATE, END, PAD, SPECIAL_TOKENS

BUILTIN_MODEL_NAME = "toolkit-builtin-tiny-llama"


@dataclass
class PretrainSummary:
    steps: int
    tokens_seen: int
    corpus_tokens: int
    first_loss: float
    final_loss: float
    wall_time_s: float


def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=END, pad_token=PAD,
        additional_special_tokens=list(SPECIAL_TOKENS[3:]), model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _render(tokenizer, item: str | list[dict]) -> str:
    if isinstance(item, str):
        return BOS + item + END
    return tokenizer.apply_chat_template(item, tokenize=False)


def build_builtin_base(params: BuiltinBaseParams, seed: int, out_dir: Path, progress: bool = True) -> PretrainSummary:
    import torch
    from tqdm import tqdm
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    corpus = pretraining_corpus(params.corpus_documents, seed)
    plain_texts = [item if isinstance(item, str) else " ".join(m["content"] for m in item) for item in corpus]
    tokenizer = build_tokenizer(plain_texts, params.vocab_size)

    stream: list[int] = []
    for item in corpus:
        stream.extend(tokenizer(_render(tokenizer, item), add_special_tokens=False)["input_ids"])
    block = params.context_length
    n_blocks = len(stream) // block
    blocks = torch.tensor(stream[: n_blocks * block], dtype=torch.long).view(n_blocks, block)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        num_key_value_heads=params.num_heads,
        max_position_embeddings=params.context_length,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.pretrain_learning_rate, weight_decay=0.01)
    warmup = max(1, params.pretrain_steps // 20)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress_ = (step - warmup) / max(1, params.pretrain_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    started = time.perf_counter()
    log_every = max(1, params.pretrain_steps // 10)
    for step in tqdm(range(params.pretrain_steps), desc="pre-training builtin base", disable=not progress):
        index = torch.randint(0, n_blocks, (params.pretrain_batch_size,), generator=generator)
        batch = blocks[index]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if not progress and (step + 1) % log_every == 0:
            # No progress bar without a terminal (CI logs): a line every tenth of the run instead.
            print(f"pre-training step {step + 1}/{params.pretrain_steps}: loss {losses[-1]:.3f}", file=sys.stderr,
                  flush=True)
    elapsed = time.perf_counter() - started

    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    tail = losses[-10:]
    return PretrainSummary(
        steps=params.pretrain_steps,
        tokens_seen=params.pretrain_steps * params.pretrain_batch_size * block,
        corpus_tokens=len(stream),
        first_loss=losses[0],
        final_loss=sum(tail) / len(tail),
        wall_time_s=elapsed,
    )
