"""Preparing a message for the extractors: words, lemmas, clauses, a call's client lines, a form's fields.

A message typed in Latin letters is either Russian in transliteration («zavtra mozhno?»), turned into
Cyrillic here, or English («tomorrow at 11?»), kept as written: its words get English lemmas and the
extractors read it with their English patterns."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    pass
from leadflow.domain.qualify.morphology import lemmas_of, transliterate


class _LazyPattern:
    """A regular expression compiled on first use: about thirty of them would cost ~10 ms at import."""

    __slots__ = ("_args", "compiled")

    def __init__(self, pattern: str, flags: int = 0):
        self._args = (pattern, flags)
        self.compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if self.compiled is None:
            self.compiled = re.compile(*self._args)
        return getattr(self.compiled, name)


def lazy_re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return cast("re.Pattern[str]", _LazyPattern(pattern, flags))


WORD_RE = lazy_re(r"[a-zа-яё]+(?:-[a-zа-яё]+)*|\d+", re.IGNORECASE)


CYRILLIC_RE = lazy_re(r"[а-яё]", re.IGNORECASE)


LATIN_RE = lazy_re(r"[a-z]", re.IGNORECASE)


# «никогда не делала» is no past visit; «не раньше 16» is a bound, not the past
PAST_CLAUSE_RE = lazy_re(
    r"\b(?:прошл\w* раз\w*|(?<!не )(?:делал\w*|сделал\w*|был[аи]?|ходил\w*|приходил\w*)|вчера|"
    r"last time|yesterday)\b"
)


# Run-on text (voice-like, no punctuation) still has clauses: «…на маникюр потому что в прошлый раз…»
CLAUSE_SPLIT_RE = lazy_re(
    r"[.,;!?\n]+|\s—\s|\s-\s|\bтеперь\b|\bа сейчас\b|\bа теперь\b|"
    r"\b(?:потому что|так как|а то|так что|хотя|главное)\b|"
    r"(?<![.,;!?\n]) (?=(?:хочу|хотела?|хотим|запишите|можно)\b)"
)


MAX_PHRASE_GAP = 2


@dataclass(slots=True)
class Token:
    text: str  # lower case, ё as е, transliterated when the message is typed in Latin
    original: str
    start: int
    clause: int
    lemmas: frozenset[str] = field(default_factory=frozenset)


@dataclass(slots=True)
class Message:
    """One message prepared once for all extractors."""

    raw: str  # the client's words (transcript: client lines only), original case
    norm: str  # lower case, ё as е, Latin words transliterated when the message is typed in Latin
    tokens: list[Token]
    form_fields: dict[str, str]
    operator_asked_name: list[str]  # client lines that answer «как вас зовут?»
    is_form: bool
    past_clauses: frozenset[int]
    english: bool = False


def split_transcript(text: str, channel: str) -> tuple[str, list[str]]:
    """Client lines of a call transcript, and the client lines that answer a name question."""
    lines = text.splitlines()
    speaker_re = re.compile(r"^\s*([A-Za-zА-Яа-яЁё]+)\s*:\s*(.*)$")
    labelled = [speaker_re.match(line) for line in lines]
    has_speakers = any(
        m and m.group(1).lower() in lexicon.CLIENT_LABELS + lexicon.OPERATOR_LABELS for m in labelled
    )
    if not has_speakers:
        return text, []
    client_lines: list[str] = []
    answers: list[str] = []
    asked = False
    for match in labelled:
        if not match:
            continue
        speaker = match.group(1).lower()
        said = match.group(2)
        if speaker in lexicon.CLIENT_LABELS:
            client_lines.append(said)
            if asked:
                answers.append(said)
            asked = False
        elif speaker in lexicon.OPERATOR_LABELS:
            asked = any(re.search(p, said.lower()) for p in lexicon.NAME_QUESTIONS)
    return "\n".join(client_lines), answers


FORM_FIELD_RE = lazy_re(
    r"^\s*(имя|name|телефон|phone|тел|комментарий|comment|сообщение|email|почта)\s*:\s*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)


def prepare(text: str, channel: str = "") -> Message:
    raw, answers = split_transcript(text or "", channel)
    form_fields = {m.group(1).lower(): m.group(2).strip() for m in FORM_FIELD_RE.finditer(raw)}
    is_form = "имя" in form_fields or "name" in form_fields or ("form" in channel and bool(form_fields))
    lowered = raw.lower().replace("ё", "е")
    # blank holiday wishes out, keeping offsets: «с 8 марта» is neither a date nor a request
    lowered = compiled(lexicon.HOLIDAY_GREETING_PATTERNS).sub(lambda m: " " * len(m.group(0)), lowered)
    latin_typed = len(LATIN_RE.findall(lowered)) > len(CYRILLIC_RE.findall(lowered))
    english = latin_typed and any(w in lexicon.ENGLISH_MARKERS for w in ENGLISH_WORD_RE.findall(lowered))
    transliterated = latin_typed and not english
    if transliterated:
        lowered = WORD_RE.sub(
            lambda m: transliterate(m.group(0)) if LATIN_RE.match(m.group(0)) else m.group(0), lowered
        )
    clause_starts = [0] + [m.end() for m in CLAUSE_SPLIT_RE.finditer(lowered)]
    tokens: list[Token] = []
    originals = {m.start(): m.group(0) for m in WORD_RE.finditer(raw)} if not transliterated else {}
    lemmatise = english_lemmas if english else lemmas_of
    clause = 0
    for match in WORD_RE.finditer(lowered):
        while clause + 1 < len(clause_starts) and clause_starts[clause + 1] <= match.start():
            clause += 1
        word = match.group(0)
        tokens.append(
            Token(
                word,
                originals.get(match.start(), word),
                match.start(),
                clause,
                lemmatise(word) if not word.isdigit() else frozenset({word}),
            )
        )
    if transliterated:
        # keep the Latin spelling for names («Anna»): map token order back onto the original words
        latin_words = [m.group(0) for m in WORD_RE.finditer(raw)]
        if len(latin_words) == len(tokens):
            for token, source in zip(tokens, latin_words, strict=True):
                token.original = source
    clauses_text: dict[int, list[str]] = {}
    for token in tokens:
        clauses_text.setdefault(token.clause, []).append(token.text)
    past = frozenset(c for c, words in clauses_text.items() if PAST_CLAUSE_RE.search(" ".join(words)))
    return Message(raw, lowered, tokens, form_fields, answers, is_form, past, english)


ENGLISH_WORD_RE = lazy_re(r"[a-z]+(?:'[a-z]+)?")


def language_of(text: str) -> str | None:
    """ "en" for a message in English, "ru" for one in Cyrillic; None when it cannot tell (no words, or
    Latin letters with no English word: «ok», «zavtra mozhno?» — the conversation's language stays)."""
    lowered = (text or "").lower()
    latin, cyrillic = len(LATIN_RE.findall(lowered)), len(CYRILLIC_RE.findall(lowered))
    if cyrillic >= latin:
        return "ru" if cyrillic else None
    english = any(w in lexicon.ENGLISH_MARKERS for w in ENGLISH_WORD_RE.findall(lowered))
    return "en" if english else None


def is_emoji_only(text: str) -> bool:
    """«💅💅🔥», «❤️ 👍»: pictographs and nothing to read (no letters, no digits)."""
    import unicodedata

    pictographs = 0
    for char in text or "":
        if char.isalnum():
            return False
        if unicodedata.category(char) == "So":
            pictographs += 1
    return pictographs > 0


@functools.lru_cache(maxsize=20_000)
def english_lemmas(word: str) -> frozenset[str]:
    """The word and its singular or plural: enough to meet a catalog's English keywords («lash», «lashes»)."""
    forms = {word}
    if len(word) > 4 and word.endswith("ies"):
        forms.add(word[:-3] + "y")
    elif len(word) > 4 and word.endswith("es"):
        forms.update((word[:-2], word[:-1]))
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
    elif len(word) > 2:
        forms.add(word + "s")
    return frozenset(forms)


CORRECTION_RE = lazy_re(r"\b(?:хотя нет|а нет|ой нет|нет,? лучше|вернее|точнее|actually,? no|or rather)\b")


def correction_at(norm: str) -> int | None:
    """Where the client takes back what they said before («…хотя нет, лучше завтра»)."""
    match = CORRECTION_RE.search(norm)
    return match.start() if match else None


def clause_at(tokens: list[Token], position: int) -> int:
    clause = 0
    for token in tokens:
        if token.start > position:
            break
        clause = token.clause
    return clause


@functools.cache
def compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # one \b in front of the alternatives that start with it: with a \b in each of ~80 branches the
    # engine tries every branch at every position (~12 times slower)
    bounded = [p[2:] for p in patterns if p.startswith(r"\b")]
    rest = [p for p in patterns if not p.startswith(r"\b")]
    branches = ([r"\b(?:" + "|".join(f"(?:{p})" for p in bounded) + ")"] if bounded else []) + [
        f"(?:{p})" for p in rest
    ]
    return re.compile("|".join(branches), re.MULTILINE)


def any_of(patterns: tuple[str, ...], text: str) -> bool:
    return bool(compiled(patterns).search(text))
