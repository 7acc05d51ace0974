"""Prompt-injection patterns in training inputs, kept as data in policies/data_suites/.

Only what a user would type is scanned (user turns and string prompts), not system prompts or
answers. Findings are flagged and reported; the policy decides whether they block.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from toolkit.data.formats import Record
from toolkit.errors import ConfigError
from toolkit.files import parse_yaml

PATTERNS_FILE = Path("policies/data_suites/prompt_injection.yaml")


def load_patterns(path: Path = PATTERNS_FILE) -> list[tuple[str, re.Pattern]]:
    if not path.is_file():
        raise ConfigError("prompt-injection pattern file not found", file=str(path))
    raw = parse_yaml(path, ConfigError) or {}
    items = raw.get("patterns") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ConfigError("expected a mapping with a 'patterns' list", file=str(path), line=1)
    patterns = []
    for index, item in enumerate(items):
        key = f"patterns[{index}]"
        if not isinstance(item, dict) or not {"id", "regex"} <= set(item):
            raise ConfigError("each pattern needs an id and a regex", file=str(path), key=key)
        try:
            patterns.append((str(item["id"]), re.compile(str(item["regex"]), re.IGNORECASE)))
        except re.error as exc:
            raise ConfigError(f"invalid regular expression: {exc}", file=str(path), key=f"{key}.regex") from None
    return patterns


def scan(records: list[Record], patterns: list[tuple[str, re.Pattern]], max_examples: int = 20):
    """(flagged lines, count per pattern, examples with line, field and pattern id)."""
    flagged, by_pattern, examples = set(), Counter(), []
    for record in records:
        for index, message in enumerate(record.messages):
            if message["role"] not in ("user", "tool"):   # a tool's result is the classic indirect injection
                continue
            for pattern_id, pattern in patterns:
                if pattern.search(message["content"]):
                    flagged.add(record.line)
                    by_pattern[pattern_id] += 1
                    if len(examples) < max_examples:
                        examples.append({"line": record.line, "field": f"messages[{index}].content", "pattern": pattern_id})
    return flagged, dict(by_pattern), examples
