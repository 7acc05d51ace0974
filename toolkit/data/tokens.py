"""Token lengths in the base model's tokenizer, through the chat template training will use.

Every conversation is rendered with the tokenizer's chat template (a record the template cannot
render is a problem on its line) and its rendered length is compared with train.max_length, so the
report says how many records training would truncate.

Speed (100,000 records must validate in under a minute on two cores):
- turns repeat (a system prompt in every record), so each distinct turn is tokenized once;
- a tokenizer cuts its added (control) tokens out of a text before encoding the pieces between
  them, so a rendered conversation's length is its number of control tokens plus the lengths of
  its pieces; pieces repeat too, and each distinct one is encoded once;
- the compiled chat template is rendered directly, without apply_chat_template's per-call work.
The last two are checked against the plain way on a sample first; a tokenizer or template for which
they do not hold is handled the plain way, text by text.
"""

from __future__ import annotations

import re
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
    longest_field: dict[int, str] = field(default_factory=dict)   # line -> canonical field of that turn
    rendered: dict[int, int] = field(default_factory=dict)        # line -> tokens of its longest rendering
    render_errors: dict[int, str] = field(default_factory=dict)   # line -> why the template failed


def tokenizer_path(params: Params) -> Path:
    """data.tokenizer, or the base model the base stage resolved."""
    if params.data.tokenizer:
        path = Path(params.data.tokenizer)
        if not path.exists():
            raise ConfigError(f"tokenizer folder {path} not found", file="params.yaml", key="data.tokenizer")
        return path
    from toolkit.models import base_model_path

    return base_model_path()


def load_tokenizer(params: Params):
    from transformers import AutoTokenizer

    path = tokenizer_path(params)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=params.base.trust_remote_code)
    if not tokenizer.chat_template:
        raise ConfigError(f"the tokenizer in {path} has no chat template; training needs one to render chat data",
                          file="params.yaml", key="data.tokenizer")
    return tokenizer, str(path)


def count_tokens(records: list[Record], tokenizer, source: str, chunk: int = 2_000) -> TokenCounts:
    from toolkit.files import sha256_text

    counts = TokenCounts(source, sha256_text(tokenizer.chat_template))
    distinct = list(dict.fromkeys(text for record in records for _, text in record.texts()))
    length_of = dict(zip(distinct, map(len, _encode(tokenizer, distinct))))
    for record in records:
        name, text = max(record.texts(), key=lambda item: length_of[item[1]])
        counts.longest_turn[record.line], counts.longest_field[record.line] = length_of[text], name

    owners, rendered = [], []
    for start in range(0, len(records), chunk):
        chunk_owners, chunk_rendered = _render(records[start:start + chunk], tokenizer, counts.render_errors)
        owners += chunk_owners
        rendered += chunk_rendered
    for line, length in zip(owners, rendered_lengths(tokenizer, rendered)):
        counts.rendered[line] = max(counts.rendered.get(line, 0), length)
    return counts


def rendered_lengths(tokenizer, texts: list[str], sample: int = 256) -> list[int]:
    """Token count of each text, encoding each distinct piece between control tokens once."""
    added = [t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.content]
    if not added or not texts:
        return [len(ids) for ids in _encode(tokenizer, texts)]
    splitter = re.compile("|".join(re.escape(t) for t in sorted(added, key=len, reverse=True)))
    pieces = [splitter.split(text) for text in texts]
    distinct = list({piece for parts in pieces for piece in parts if piece})
    length_of = dict(zip(distinct, map(len, _encode(tokenizer, distinct))))
    lengths = [len(parts) - 1 + sum(length_of[p] for p in parts if p) for parts in pieces]
    direct = [len(ids) for ids in _encode(tokenizer, texts[:sample])]
    if direct != lengths[:len(direct)]:
        return [len(ids) for ids in _encode(tokenizer, texts)]
    return lengths


def _render(records: list[Record], tokenizer, errors: dict[int, str]) -> tuple[list[int], list[str]]:
    """(owning line, rendered text) of every conversation: plain ones in one batch, tool-calling
    ones (rendered with their tools) and every one of a batch that fails, record by record."""
    plain = [record for record in records if not record.tools]
    owners = [record.line for record in plain for _ in record.conversations()]
    try:
        rendered = _render_batch(tokenizer, [c for record in plain for c in record.conversations()]) if plain else []
        one_by_one = [record for record in records if record.tools]
    except Exception:  # a template raises whatever its author chose (TemplateError, ValueError ...)
        owners, rendered, one_by_one = [], [], records
    for record in one_by_one:
        try:
            texts = [tokenizer.apply_chat_template(c, tools=record.tools, tokenize=False) for c in record.conversations()]
        except Exception as exc:
            errors[record.line] = f"the chat template cannot render it: {exc}"
            continue
        owners += [record.line] * len(texts)
        rendered += texts
    return owners, rendered


def _render_batch(tokenizer, conversations: list[list[dict]], sample: int = 64) -> list[str]:
    """apply_chat_template(tokenize=False) for plain {role, content} messages, rendered through the
    compiled template with the special tokens as variables, as apply_chat_template does."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    template = _compile_jinja_template(tokenizer.chat_template)
    variables = dict(tokenizer.special_tokens_map)
    rendered = [template.render(messages=c, tools=None, documents=None, add_generation_prompt=False, **variables)
                for c in conversations]
    if rendered[:sample] != list(tokenizer.apply_chat_template(conversations[:sample], tokenize=False)):
        return list(tokenizer.apply_chat_template(conversations, tokenize=False))
    return rendered


def _encode(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch_fast"):  # a Rust tokenizer: no offsets, all cores
        return [encoding.ids for encoding in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]
