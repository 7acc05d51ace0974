"""The language of a text, with langid.py's model (py3langid: numpy only, the model ships in the wheel,
about 30,000 short texts a second on one core). Texts it is unsure of (short ones, codes, numbers)
are "und", so a mix of languages is compared on what can be told."""

from __future__ import annotations

from functools import lru_cache

UNDETERMINED = "und"
MIN_PROBABILITY = 0.5


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_of(text: str) -> str:
    if len(text.split()) < 3:
        return UNDETERMINED
    language, probability = _identifier().classify(text)
    return language if probability >= MIN_PROBABILITY else UNDETERMINED
