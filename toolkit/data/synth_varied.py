"""Varied synthetic chat for benchmarks: text that is not built from templates, with the wide,
long-tailed length distribution of real chat data.

The support tickets of the demo come from templates: their pieces repeat, their lengths are alike
(149-177 tokens), and a tokenizer cache or a packing scheme looks better on them than on real data.
Here every turn is drawn word by word from a Zipf-distributed vocabulary of made-up words (so text
rarely repeats, as in real chat), and turn lengths are log-normal (median about 40 words, a tail to
thousands), with one to four exchanges per conversation. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random

_ONSETS = ("b", "br", "c", "ch", "d", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "pl", "qu", "r", "s", "sh",
           "st", "t", "th", "tr", "v", "w", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou", "y")
_CODAS = ("", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck")


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < size:
        syllables = rng.choice((1, 1, 2, 2, 2, 3, 3, 4))
        words["".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))] = None
    return list(words)


class _Writer:
    def __init__(self, seed: int, vocabulary_size: int, median_words: float, sigma: float, max_words: int):
        self.rng = random.Random(seed)
        self.words = vocabulary(vocabulary_size, self.rng)
        weights = [1 / (rank + 1) ** 1.07 for rank in range(len(self.words))]   # Zipf, as in natural text
        total = sum(weights)
        self.cumulative = [0.0] * len(weights)
        running = 0.0
        for i, weight in enumerate(weights):
            running += weight / total
            self.cumulative[i] = running
        self.mu, self.sigma, self.max_words = math.log(median_words), sigma, max_words

    def turn(self) -> str:
        count = max(1, min(self.max_words, int(self.rng.lognormvariate(self.mu, self.sigma))))
        picks = self.rng.choices(self.words, cum_weights=self.cumulative, k=count)
        out, sentence = [], 0
        for word in picks:
            if sentence == 0:
                word = word.capitalize()
            if self.rng.random() < 0.03:
                word = str(self.rng.randint(0, 9999))
            sentence += 1
            if sentence >= self.rng.randint(6, 18):
                word += "." if self.rng.random() < 0.8 else "?"
                sentence = 0
            out.append(word)
        return " ".join(out) + ("" if out[-1][-1] in ".?" else ".")


def varied_chat_records(count: int, seed: int, median_words: float = 40, sigma: float = 1.0,
                        max_words: int = 3000, vocabulary_size: int = 30_000) -> list[dict]:
    """`count` chat records (an optional system turn, then 1-4 user/assistant exchanges)."""
    writer = _Writer(seed, vocabulary_size, median_words, sigma, max_words)
    rng = writer.rng
    records = []
    for _ in range(count):
        messages = [{"role": "system", "content": writer.turn()}] if rng.random() < 0.3 else []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
            messages += [{"role": "user", "content": writer.turn()}, {"role": "assistant", "content": writer.turn()}]
        records.append({"messages": messages})
    return records
