"""Russian word forms (pymorphy3, loaded on first use): lemmas, known words, transliteration, near spellings.

Shared with the branch matcher and the reply composer, which need the same word forms."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    pass


@functools.cache
def morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@functools.lru_cache(maxsize=50_000)
def lemmas_of(word: str) -> frozenset[str]:
    """Normal forms of a lower-case word (all likely parses; ё as е)."""
    if word.isdigit() or len(word) < 2:
        return frozenset({word})
    forms = {word.replace("ё", "е")}
    for parse in morph().parse(word):
        if parse.score >= 0.05:
            forms.add(parse.normal_form.replace("ё", "е"))
    return frozenset(forms)


@functools.lru_cache(maxsize=50_000)
def is_known_word(word: str) -> bool:
    return bool(morph().word_is_known(word))


def edit_distance_at_most(a: str, b: str, limit: int) -> bool:
    if abs(len(a) - len(b)) > limit:
        return False
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        if min(current) > limit:
            return False
        previous = current
    return previous[-1] <= limit


def transliterate(word: str) -> str:
    """Latin-typed Russian («zavtra», «v subbotu») to Cyrillic."""
    out = []
    i = 0
    lower = word.lower()
    while i < len(lower):
        for latin, cyrillic in lexicon.TRANSLIT:
            if lower.startswith(latin, i):
                # «y» after a vowel is й (zdravstvuyte), elsewhere ы (resnicy)
                out.append(cyrillic)
                i += len(latin)
                break
        else:
            if lower[i] == "y":
                out.append("й" if out and out[-1] in "аеиоуыэюя" else "ы")
            else:
                out.append(lower[i])
            i += 1
    return "".join(out)
