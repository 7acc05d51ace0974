"""Token lengths in the base model's tokenizer, through the chat template training will use.

Every conversation is rendered with the tokenizer's chat template (a record the template cannot
render is a problem on its line) and its rendered length is compared with train.max_length, so the
report says how many records training would truncate. Tokenization is batched (the Rust tokenizer
does it in parallel); only template rendering runs per record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from toolkit.config import Params
from toolkit.data.formats import Record
from toolkit.errors import ConfigError


@dataclass
class TokenCounts:
    tokenizer: str
    chat_template_sha256: str | None
    longest_turn: dict[int, int] = field(default_factory=dict)    # line -> tokens of its longest turn
    rendered: dict[int, int] = field(default_factory=dict)        # line -> tokens of its longest rendering
    render_errors: dict[int, str] = field(default_factory=dict)   # line -> why the template failed


def tokenizer_path(params: Params) -> Path:
    """data.tokenizer, or the base model the base stage resolved."""
    if params.data.tokenizer:
        path = Path(params.data.tokenizer)
        if not path.exists():
            raise ConfigError(f"tokenizer folder {path} not found", file="params.yaml", key="data.tokenizer")
        return path
    from toolkit.train.base_stage import base_model_path

    return base_model_path()


def load_tokenizer(params: Params):
    from transformers import AutoTokenizer

    path = tokenizer_path(params)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=params.base.trust_remote_code)
    if not tokenizer.chat_template:
        raise ConfigError(f"the tokenizer in {path} has no chat template; training needs one to render chat data",
                          file="params.yaml", key="data.tokenizer")
    return tokenizer, str(path)


def count_tokens(records: list[Record], tokenizer, source: str) -> TokenCounts:
    from toolkit.files import sha256_text

    counts = TokenCounts(source, sha256_text(tokenizer.chat_template))
    turn_owner, turn_texts = [], []
    for record in records:
        for _, text in record.texts():
            turn_owner.append(record.line)
            turn_texts.append(text)
    for line, ids in zip(turn_owner, _encode(tokenizer, turn_texts)):
        counts.longest_turn[line] = max(counts.longest_turn.get(line, 0), len(ids))

    render_owner, rendered = [], []
    for record in records:
        for conversation in record.conversations():
            try:
                rendered.append(tokenizer.apply_chat_template(conversation, tokenize=False))
                render_owner.append(record.line)
            except Exception as exc:  # a template raises whatever its author chose (TemplateError, ValueError ...)
                counts.render_errors[record.line] = f"the chat template cannot render it: {exc}"
                break
    for line, ids in zip(render_owner, _encode(tokenizer, rendered)):
        if line not in counts.render_errors:
            counts.rendered[line] = max(counts.rendered.get(line, 0), len(ids))
    return counts


def _encode(tokenizer, texts: list[str], chunk: int = 20_000) -> list[list[int]]:
    ids: list[list[int]] = []
    for start in range(0, len(texts), chunk):
        ids.extend(tokenizer(texts[start:start + chunk], add_special_tokens=False)["input_ids"])
    return ids
