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

On varied (untemplated) text nothing repeats, and rendering and encoding every conversation again
would double the work. So a conversation's rendered length is first taken as the sum of its turns'
lengths (already counted) plus what the template adds, which depends only on the sequence of roles
(its "signature"): for every signature in the data, some of its conversations (all, if few) are
rendered and encoded exactly; the template's share must come out the same for each of them, or the
whole file is counted the plain way. Turns this cannot hold for (control-token text, surrounding
whitespace a template may trim, tool calls) and conversations within 16 tokens of
train.max_length (so the count of truncated records is exact) are always counted the plain way.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
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


def count_tokens(records: list[Record], tokenizer, source: str, max_length: int | None = None,
                 chunk: int = 2_000) -> TokenCounts:
    from toolkit.files import sha256_text

    counts = TokenCounts(source, sha256_text(tokenizer.chat_template))
    distinct = list(dict.fromkeys(text for record in records for _, text in record.texts()))
    length_of = dict(zip(distinct, _lengths(tokenizer, distinct)))
    for record in records:
        name, text = max(record.texts(), key=lambda item: length_of[item[1]])
        counts.longest_turn[record.line], counts.longest_field[record.line] = length_of[text], name

    records = _add_template_shares(records, tokenizer, length_of, max_length, counts.rendered)
    owners, rendered = [], []
    for start in range(0, len(records), chunk):
        chunk_owners, chunk_rendered = _render(records[start:start + chunk], tokenizer, counts.render_errors)
        owners += chunk_owners
        rendered += chunk_rendered
    for line, length in zip(owners, rendered_lengths(tokenizer, rendered)):
        counts.rendered[line] = max(counts.rendered.get(line, 0), length)
    return counts


def _add_template_shares(records: list[Record], tokenizer, length_of: dict[str, int], max_length: int | None,
                         rendered: dict[int, int], per_signature: int = 8, extra: int = 512) -> list[Record]:
    """Fills `rendered` by turn lengths plus the template's share for every record it can; returns
    the records left to render and encode (all of them where the template's share is not fixed)."""
    added = _control_tokens(tokenizer)

    def plain_turn(message: dict) -> bool:
        text = message.get("content")
        return (set(message) == {"role", "content"} and isinstance(text, str) and text != "" and text == text.strip()
                and not any(token in text for token in added))

    simple = [r for r in records if not r.tools and all(plain_turn(m) for c in r.conversations() for m in c)]
    if not simple:
        return records
    by_signature: dict[tuple, list[list[dict]]] = defaultdict(list)
    for record in simple:
        for conversation in record.conversations():
            by_signature[tuple(m["role"] for m in conversation)].append(conversation)
    rng = random.Random(0)
    sample = [c for group in by_signature.values() for c in (group if len(group) <= per_signature
                                                                else rng.sample(group, per_signature))]
    everything = [c for group in by_signature.values() for c in group]
    sample += rng.sample(everything, min(extra, len(everything)))
    try:
        exact = _lengths(tokenizer, _render_batch(tokenizer, sample))
    except Exception:   # a template that cannot render some sample: the plain way, record by record
        return records
    share: dict[tuple, int] = {}
    for conversation, length in zip(sample, exact):
        template_share = length - sum(length_of[m["content"]] for m in conversation)
        if share.setdefault(tuple(m["role"] for m in conversation), template_share) != template_share:
            return records   # the template's share depends on more than the roles
    simple_lines = {r.line for r in simple}
    left = [r for r in records if r.line not in simple_lines]
    for record in simple:
        lengths = [share[tuple(m["role"] for m in c)] + sum(length_of[m["content"]] for m in c)
                   for c in record.conversations()]
        if max_length is not None and any(abs(n - max_length) <= 16 for n in lengths):
            left.append(record)
        else:
            rendered[record.line] = max(lengths)
    return left


def rendered_lengths(tokenizer, texts: list[str], sample: int = 256) -> list[int]:
    """Token count of each text, encoding each distinct piece between control tokens once."""
    added = _control_tokens(tokenizer)
    if not added or not texts:
        return _lengths(tokenizer, texts)
    splitter = re.compile("|".join(re.escape(t) for t in sorted(added, key=len, reverse=True)))
    pieces = [splitter.split(text) for text in texts]
    distinct = list({piece for parts in pieces for piece in parts if piece})
    length_of = dict(zip(distinct, _lengths(tokenizer, distinct)))
    lengths = [len(parts) - 1 + sum(length_of[p] for p in parts if p) for parts in pieces]
    direct = _lengths(tokenizer, texts[:sample])
    if direct != lengths[:len(direct)]:
        return _lengths(tokenizer, texts)
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


def _control_tokens(tokenizer) -> list[str]:
    """The text of the tokenizer's added (control) tokens, which it cuts out before encoding."""
    return [t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.content]


def _lengths(tokenizer, texts: list[str], batch: int = 2_000) -> list[int]:
    """Token count of each text. In batches: one call over hundreds of thousands of texts holds all
    their encodings at once and was twice as slow as batches of 2,000 (measured on 158k texts)."""
    backend = getattr(tokenizer, "_tokenizer", None)
    fast = backend is not None and hasattr(backend, "encode_batch_fast")   # a Rust tokenizer: no offsets, all cores
    lengths: list[int] = []
    for start in range(0, len(texts), batch):
        part = texts[start:start + batch]
        if fast:
            lengths += [len(encoding) for encoding in backend.encode_batch_fast(part, add_special_tokens=False)]
        else:
            lengths += [len(ids) for ids in tokenizer(part, add_special_tokens=False)["input_ids"]]
    return lengths
