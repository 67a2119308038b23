"""The offline qualifier: rules, a lemmatised keyword index and pymorphy3, no network.

Field meanings follow ``shared/samples/qualify/LABELING.md``. Import is cheap: pymorphy3 and
phonenumbers load on the first message, and one `Catalog` (the keyword index) is built per
service list and cached.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from leadflow.domain.models import Intent, Qualification, Temperature
from leadflow.domain.phones import russian_client_number
from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    from leadflow.business import Service


class _LazyPattern:
    """A regular expression compiled on first use: about thirty of them would cost ~10 ms at import."""

    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern: str, flags: int = 0):
        self._args = (pattern, flags)
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            self._compiled = re.compile(*self._args)
        return getattr(self._compiled, name)


def _lazy_re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return cast("re.Pattern[str]", _LazyPattern(pattern, flags))


__all__ = [
    "Catalog",
    "extract_date",
    "extract_name",
    "extract_phone",
    "extract_time",
    "qualify_offline",
]

WORD_RE = _lazy_re(r"[a-zа-яё]+(?:-[a-zа-яё]+)*|\d+", re.IGNORECASE)
CYRILLIC_RE = _lazy_re(r"[а-яё]", re.IGNORECASE)
LATIN_RE = _lazy_re(r"[a-z]", re.IGNORECASE)
PAST_CLAUSE_RE = _lazy_re(
    r"\b(?:прошл\w* раз\w*|делал\w*|сделал\w*|был[аи]?|ходил\w*|приходил\w*|вчера|раньше)\b"
)
CLAUSE_SPLIT_RE = _lazy_re(r"[.,;!?\n]+|\s—\s|\s-\s|\bтеперь\b|\bа сейчас\b|\bа теперь\b")
MAX_PHRASE_GAP = 2


# --------------------------------------------------------------------------- morphology


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
def _is_known(word: str) -> bool:
    return bool(morph().word_is_known(word))


def _edit_distance_at_most(a: str, b: str, limit: int) -> bool:
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


# --------------------------------------------------------------------------- text preparation


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


def _split_transcript(text: str, channel: str) -> tuple[str, list[str]]:
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


FORM_FIELD_RE = _lazy_re(
    r"^\s*(имя|name|телефон|phone|тел|комментарий|comment|сообщение|email|почта)\s*:\s*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)


def prepare(text: str, channel: str = "") -> Message:
    raw, answers = _split_transcript(text or "", channel)
    form_fields = {m.group(1).lower(): m.group(2).strip() for m in FORM_FIELD_RE.finditer(raw)}
    is_form = "имя" in form_fields or "name" in form_fields or ("form" in channel and bool(form_fields))
    lowered = raw.lower().replace("ё", "е")
    # blank holiday wishes out, keeping offsets: «с 8 марта» is neither a date nor a request
    lowered = _compiled(lexicon.HOLIDAY_GREETING_PATTERNS).sub(lambda m: " " * len(m.group(0)), lowered)
    latin_typed = len(LATIN_RE.findall(lowered)) > len(CYRILLIC_RE.findall(lowered))
    if latin_typed:
        lowered = WORD_RE.sub(
            lambda m: transliterate(m.group(0)) if LATIN_RE.match(m.group(0)) else m.group(0), lowered
        )
        original = raw
    else:
        original = raw
    clause_starts = [0] + [m.end() for m in CLAUSE_SPLIT_RE.finditer(lowered)]
    tokens: list[Token] = []
    originals = {m.start(): m.group(0) for m in WORD_RE.finditer(original)} if not latin_typed else {}
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
                lemmas_of(word) if not word.isdigit() else frozenset({word}),
            )
        )
    if latin_typed:
        # keep the Latin spelling for names («Anna»): map token order back onto the original words
        latin_words = [m.group(0) for m in WORD_RE.finditer(original)]
        if len(latin_words) == len(tokens):
            for token, source in zip(tokens, latin_words, strict=True):
                token.original = source
    clauses_text: dict[int, list[str]] = {}
    for token in tokens:
        clauses_text.setdefault(token.clause, []).append(token.text)
    past = frozenset(c for c, words in clauses_text.items() if PAST_CLAUSE_RE.search(" ".join(words)))
    return Message(raw, lowered, tokens, form_fields, answers, is_form, past)


# --------------------------------------------------------------------------- catalog matcher


@dataclass(frozen=True, slots=True)
class _Phrase:
    lemmas: tuple[str, ...]
    service_id: str
    catalog_keyword: bool


class Catalog:
    """The lemmatised keyword index of one service list; build once with `Catalog.of(services)`."""

    def __init__(self, services: Sequence[Service]):
        self.service_ids = tuple(s.id for s in services)
        known = set(self.service_ids)
        phrases: list[_Phrase] = []
        for service in services:
            for keyword in [*service.keywords, service.name]:
                words = tuple(
                    self._phrase_lemma(w) for w in WORD_RE.findall(keyword.lower().replace("ё", "е"))
                )
                if words:
                    phrases.append(_Phrase(words, service.id, True))
        for service_id, synonyms in lexicon.SERVICE_SYNONYMS.items():
            if service_id not in known:
                continue
            for synonym in synonyms:
                words = tuple(WORD_RE.findall(synonym))
                phrases.append(_Phrase(words, service_id, False))
        self.by_first: dict[str, list[_Phrase]] = {}
        for phrase in phrases:
            self.by_first.setdefault(phrase.lemmas[0], []).append(phrase)
        for candidates in self.by_first.values():
            candidates.sort(key=lambda p: (-len(p.lemmas), not p.catalog_keyword))
        self.vocabulary = frozenset(w for p in phrases for w in p.lemmas if len(w) >= 5)

    @staticmethod
    def _phrase_lemma(word: str) -> str:
        forms = lemmas_of(word)
        parses = morph().parse(word)
        return parses[0].normal_form.replace("ё", "е") if parses and len(forms) > 1 else next(iter(forms))

    @classmethod
    def of(cls, services: Sequence[Service]) -> Catalog:
        key = tuple((s.id, s.name, tuple(s.keywords)) for s in services)
        catalog = _CATALOGS.get(key)
        if catalog is None:
            if len(_CATALOGS) >= 64:
                _CATALOGS.clear()
            catalog = _CATALOGS[key] = cls(services)
        return catalog

    def _token_lemmas(self, token: Token) -> frozenset[str]:
        if token.text.isdigit():
            return token.lemmas
        if not _is_known(token.text) and len(token.text) >= 5:
            return token.lemmas | self._fuzzy(token.text)
        return token.lemmas

    @functools.lru_cache(maxsize=20_000)  # noqa: B019 — one Catalog per service list, kept for the process
    def _fuzzy(self, word: str) -> frozenset[str]:
        limit = 1 if len(word) < 8 else 2
        return frozenset(
            v for v in self.vocabulary if v[0] == word[0] and _edit_distance_at_most(word, v, limit)
        )

    def matches(self, message: Message) -> list[tuple[int, str, int]]:
        """(token index, service id, clause) of every phrase found, left to right, longest first."""
        tokens = message.tokens
        lemma_sets = [self._token_lemmas(t) for t in tokens]
        found: list[tuple[int, str, int]] = []
        covered_until = -1
        for index, lemmas in enumerate(lemma_sets):
            if index <= covered_until:
                continue
            best: tuple[int, _Phrase] | None = None
            for lemma in lemmas:
                for phrase in self.by_first.get(lemma, ()):
                    end = self._match_rest(phrase, lemma_sets, index)
                    if end is not None and (best is None or len(phrase.lemmas) > len(best[1].lemmas)):
                        best = (end, phrase)
            if best is not None:
                end, phrase = best
                found.append((index, phrase.service_id, tokens[index].clause))
                if len(phrase.lemmas) > 1:
                    covered_until = end
        return found

    @staticmethod
    def _match_rest(phrase: _Phrase, lemma_sets: list[frozenset[str]], start: int) -> int | None:
        position = start
        for lemma in phrase.lemmas[1:]:
            for step in range(1, MAX_PHRASE_GAP + 2):
                if position + step < len(lemma_sets) and lemma in lemma_sets[position + step]:
                    position += step
                    break
            else:
                return None
        return position


_CATALOGS: dict[tuple, Catalog] = {}


def match_service(message: Message, catalog: Catalog) -> str | None:
    found = [
        (i, sid, clause) for i, sid, clause in catalog.matches(message) if clause not in message.past_clauses
    ]
    # a word of a service we do not offer («отбелить зубы», «диагностика подвески») takes its clause
    blocked = {t.clause for t in message.tokens if t.lemmas & set(lexicon.NOT_IN_CATALOG)}
    found = [m for m in found if m[2] not in blocked or m[1] not in _GENERIC_IN_BLOCKED]
    # an ending («концы», «корни») next to «недели», «месяца» is not a service
    found = [m for m in found if not _is_time_phrase(message, m[0])]
    if not found:
        return None
    service = found[0][1]
    active = [t for t in message.tokens if t.clause not in message.past_clauses]
    lemmas: set[str] = set()
    for token in active:
        lemmas |= token.lemmas
    ids = set(catalog.service_ids)
    if service == "haircut_women" and "haircut_men" in ids and lemmas & set(lexicon.MALE_CUES):
        service = "haircut_men"
    if service == "manicure" and "gel_polish" in ids and _has_coating(active):
        service = "gel_polish"
    if service in {"dental_checkup", "dental_cleaning"} and "dental_treatment" in ids:
        cleaning_named = service == "dental_cleaning"
        if not cleaning_named and lemmas & set(lexicon.DENTAL_TREATMENT_CUES):
            service = "dental_treatment"
    return service


_GENERIC_IN_BLOCKED = frozenset({"dental_checkup", "dental_treatment", "dental_cleaning", "tire_change"})


def _is_time_phrase(message: Message, index: int) -> bool:
    tokens = message.tokens
    if index + 1 < len(tokens) and tokens[index].text.startswith("конц"):
        return bool(tokens[index + 1].lemmas & {"неделя", "месяц", "день", "год", "рабочий"})
    return False


def _has_coating(tokens: list[Token]) -> bool:
    for index, token in enumerate(tokens):
        if token.lemmas & set(lexicon.COATING_CUES):
            before = tokens[index - 1].text if index else ""
            if before != "без":
                return True
    return False


# --------------------------------------------------------------------------- phone


def _words_to_digits(text: str) -> list[str]:
    """Runs of digits dictated in words («восемь девятьсот тринадцать …») as digit strings."""
    words = re.findall(r"[а-яё+]+|\d+", text.lower().replace("ё", "е"))
    runs: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("плюс", "+"):
            if current:
                runs.append("".join(current))
            current = ["+"]
            i += 1
            continue
        value, used = _number_group(words, i)
        if used:
            current.append(value)
            i += used
            continue
        if word.isdigit() and current:
            current.append(word)
            i += 1
            continue
        if current:
            runs.append("".join(current))
            current = []
        i += 1
    if current:
        runs.append("".join(current))
    return [r for r in runs if sum(c.isdigit() for c in r) >= 10]


def _number_group(words: list[str], i: int) -> tuple[str, int]:
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    after = words[i + 2] if i + 2 < len(words) else ""
    if word in lexicon.HUNDREDS_WORDS:
        value = lexicon.HUNDREDS_WORDS[word]
        if nxt in lexicon.TENS_WORDS:
            value += lexicon.TENS_WORDS[nxt]
            if lexicon.DIGIT_WORDS.get(after):
                return str(value + lexicon.DIGIT_WORDS[after]), 3
            return str(value), 2
        if nxt in lexicon.TEEN_WORDS:
            return str(value + lexicon.TEEN_WORDS[nxt]), 2
        if lexicon.DIGIT_WORDS.get(nxt):
            return str(value + lexicon.DIGIT_WORDS[nxt]), 2
        return str(value), 1
    if word in lexicon.TENS_WORDS:
        value = lexicon.TENS_WORDS[word]
        if lexicon.DIGIT_WORDS.get(nxt):
            return str(value + lexicon.DIGIT_WORDS[nxt]), 2
        return str(value), 1
    if word in lexicon.TEEN_WORDS:
        return str(lexicon.TEEN_WORDS[word]), 1
    if word in lexicon.DIGIT_WORDS:
        return str(lexicon.DIGIT_WORDS[word]), 1
    return "", 0


PHONE_FALLBACK_RE = _lazy_re(
    r"(?<![\d№])(?:\+7|8|7)?[\s\-()]*\d{3}[\s\-()]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}(?!\d)"
)


def _valid_russian(number: Any) -> str | None:
    return russian_client_number(f"+{number.country_code}{number.national_number}")


def extract_phone(text: str, channel: str = "") -> str | None:
    """The first valid Russian number as +7XXXXXXXXXX, digits or dictated words."""
    import phonenumbers

    client_text, _ = _split_transcript(text or "", channel)
    cleaned = re.sub(r"№\s*\d+", " ", client_text)
    for match in phonenumbers.PhoneNumberMatcher(cleaned, "RU", leniency=phonenumbers.Leniency.POSSIBLE):
        if _price_or_size_context(cleaned, match.start, match.end):
            continue
        phone = _valid_russian(match.number)
        if phone:
            return phone
    for candidate in [m.group(0) for m in PHONE_FALLBACK_RE.finditer(cleaned)] + _words_to_digits(
        client_text
    ):
        digits = re.sub(r"[^\d+]", "", candidate)
        try:
            parsed = phonenumbers.parse(digits, "RU")
        except phonenumbers.NumberParseException:
            continue
        phone = _valid_russian(parsed)
        if phone:
            return phone
    return None


def _price_or_size_context(text: str, start: int, end: int) -> bool:
    after = text[end : end + 6].lower()
    before = text[max(0, start - 3) : start].lower()
    return bool(re.match(r"\s*(?:₽|р\b|руб|%|тыс|000)", after) or re.search(r"[rр№]\s*$", before))


# --------------------------------------------------------------------------- dates


@dataclass(slots=True)
class _Candidate:
    position: int
    value: Any


NEXT_WEEK_RE = _lazy_re(r"(?:следующ\w*|след\.?)(?:\s+недел\w*)?(?:\s+(?:в|во|на))?\s*$")
NEXT_WEEK_AFTER_RE = _lazy_re(r"\s*(?:на|в)\s+следующ\w*\s+недел")


def _next_weekday(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def _next_day_of_month(today: date, day: int) -> date | None:
    year, month = today.year, today.month
    for _ in range(13):
        try:
            candidate = date(year, month, day)
        except ValueError:
            candidate = None
        if candidate and candidate >= today:
            return candidate
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return None


def _next_date(today: date, day: int, month: int, year: int | None = None) -> date | None:
    try:
        if year:
            return date(year if year > 100 else 2000 + year, month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _negated_or_foreign(norm: str, start: int) -> bool:
    before = norm[max(0, start - 30) : start]
    if re.search(r"(?:^|\s)не\s+(?:на\s+|в\s+|во\s+|к\s+)?$", before):
        return True
    if re.search(r"(?:^|\s)до\s+$", before):
        return True
    events = (
        r"(?:свадьб\w*|день рождени\w*|др|праздник\w*|выпускн\w*|корпоратив\w*|"
        r"мероприяти\w*|отъезд\w*|уезжаю)"
    )
    return bool(re.search(events + r"\s+(?:у\s+\w+\s+)?(?:в|во|на)?\s*$", before))


DATE_NUMERIC_RE = _lazy_re(r"(?<![\d:.])(\d{1,2})[./](\d{1,2})(?:[./](\d{2,4}))?(?![\d:])")
DAY_OF_MONTH_RE = _lazy_re(
    r"(?<![\d.:])(\d{1,2})\s*(?:-?го|-?е)?\s*(?:числа|число)\b|(?<![\d.:])(\d{1,2})\s*-?го\b"
)
DAY_MONTH_RE = _lazy_re(r"(?<![\d.:])(\d{1,2})\s*(?:-?го\s+)?(" + "|".join(lexicon.MONTHS) + r")\b")


def extract_date(message: Message, today: date) -> date | None:
    norm = message.norm
    candidates: list[_Candidate] = []
    for match in DATE_NUMERIC_RE.finditer(norm):
        day, month = int(match.group(1)), int(match.group(2))
        year = int(match.group(3)) if match.group(3) else None
        if 1 <= month <= 12:
            value = _next_date(today, day, month, year)
            if value:
                candidates.append(_Candidate(match.start(), value))
    for match in DAY_MONTH_RE.finditer(norm):
        value = _next_date(today, int(match.group(1)), lexicon.MONTHS[match.group(2)])
        if value:
            candidates.append(_Candidate(match.start(), value))
    for match in DAY_OF_MONTH_RE.finditer(norm):
        day = int(match.group(1) or match.group(2))
        if not DAY_MONTH_RE.match(norm, match.start()):
            value = _next_day_of_month(today, day) if 1 <= day <= 31 else None
            if value:
                candidates.append(_Candidate(match.start(), value))
    tokens = message.tokens
    for index, token in enumerate(tokens):
        word = token.text
        if word in lexicon.RELATIVE_DAY_WORDS:
            if (
                word == "зав"
                and index + 1 < len(tokens)
                and tokens[index + 1].text in {"отделением", "кафедрой"}
            ):
                continue
            candidates.append(
                _Candidate(token.start, today + timedelta(days=lexicon.RELATIVE_DAY_WORDS[word]))
            )
        elif word in lexicon.WEEKDAY_WORDS:
            weekday = lexicon.WEEKDAY_WORDS[word]
            context = norm[max(0, token.start - 40) : token.start]
            if NEXT_WEEK_RE.search(context) or NEXT_WEEK_AFTER_RE.match(norm, token.start + len(word)):
                next_monday = today + timedelta(days=7 - today.weekday())
                candidates.append(_Candidate(token.start, next_monday + timedelta(days=weekday)))
            else:
                candidates.append(_Candidate(token.start, _next_weekday(today, weekday)))
    clause_of = {t.start: t.clause for t in tokens}
    kept = []
    for candidate in sorted(candidates, key=lambda c: c.position):
        clause = clause_of.get(candidate.position, _clause_at(tokens, candidate.position))
        if clause in message.past_clauses or _negated_or_foreign(norm, candidate.position):
            continue
        if candidate.value < today:
            continue
        kept.append(candidate)
    return kept[0].value if kept else None


def _clause_at(tokens: list[Token], position: int) -> int:
    clause = 0
    for token in tokens:
        if token.start > position:
            break
        clause = token.clause
    return clause


# --------------------------------------------------------------------------- times

_NOT_HOUR_AFTER = _lazy_re(
    r"\s*(?:[./]\d|-?го\b|-?е\b|числ|лет|год|лит|%|₽|р\b|р\.|руб|тыс|к\b|000|колес|шт|мм|см|кг|d\b|д\b|минут|мин\b|"
    r"раз\b|раза\b|дн|недел|месяц|сеанс|процедур|человек|чел\b|зуб|ресниц|прядей|мест|года|"
    + "|".join(lexicon.MONTHS)
    + r")"
)
CLOCK_RE = _lazy_re(r"(?<![\d:/])(?<!\d\.)([01]?\d|2[0-3])[:.]([0-5]\d)(?![\d:/]|\.\d)")
PREP = r"(?:^|(?<=[\s,(]))(?P<prep>в|во|к|ко|на|после|около|с|часов в|часа в|posle|v|k|na)\s+"
BARE_HOUR_RE = _lazy_re(PREP + r"(?P<hour>\d{1,2})(?!\d|[:.]\d)")
WORD_HOUR_RE = _lazy_re(
    PREP + r"(?P<word>" + "|".join(sorted(lexicon.HOUR_WORDS, key=len, reverse=True)) + r")\b"
)
HALF_RE = _lazy_re(
    r"\b(?:пол|пол-|половин[еау]\s+)\s*(?P<ordinal>" + "|".join(lexicon.HALF_HOUR_ORDINALS) + r")\b"
)
DAYPART_RE = _lazy_re(r"\s*(?:час\w*\s*)?(?P<part>утра|дня|вечера|ночи|pm|am)\b")


def _apply_daypart(hour: int, part: str | None) -> int:
    if part in ("дня", "вечера", "pm"):
        return hour + 12 if hour < 12 else hour
    if part in ("утра", "ночи", "am"):
        return 0 if part == "ночи" and hour == 12 else hour
    return hour + 12 if 1 <= hour <= 7 else hour


def extract_time(message: Message) -> str | None:
    norm = message.norm
    candidates: list[tuple[int, int, str, str | None]] = []  # position, end, HH:MM, preposition

    def daypart_after(end: int) -> str | None:
        match = DAYPART_RE.match(norm, end)
        return match.group("part") if match else None

    for match in CLOCK_RE.finditer(norm):
        hour, minute = int(match.group(1)), int(match.group(2))
        is_dotted = match.group(0)[len(match.group(1))] == "."
        if is_dotted and DATE_NUMERIC_RE.fullmatch(match.group(0)) and 1 <= minute <= 12 and 1 <= hour <= 31:
            continue  # 20.03 is a date
        hour = _apply_daypart(hour, daypart_after(match.end())) if hour < 13 else hour
        prep_match = re.search(r"(\S+)\s*$", norm[: match.start()])
        candidates.append(
            (
                match.start(),
                match.end(),
                f"{hour:02d}:{minute:02d}",
                prep_match.group(1) if prep_match else None,
            )
        )
    for match in BARE_HOUR_RE.finditer(norm):
        hour = int(match.group("hour"))
        if (
            hour > 23
            or _NOT_HOUR_AFTER.match(norm, match.end())
            or DAY_MONTH_RE.match(norm, match.start("hour"))
        ):
            continue
        if match.group("prep") == "с" and not re.match(r"\s+(?:до|на)\s", norm[match.end() :]):
            continue
        hour = _apply_daypart(hour, daypart_after(match.end()))
        candidates.append((match.start("hour"), match.end(), f"{hour % 24:02d}:00", match.group("prep")))
    for match in WORD_HOUR_RE.finditer(norm):
        word = match.group("word")
        if _NOT_HOUR_AFTER.match(norm, match.end()) or (
            word in {"час", "часу"} and match.group("prep") == "через"
        ):
            continue
        rest = norm[match.end() :]
        if (
            word in {"два", "три", "четыре"}
            and re.match(r"\s+(?:дня|часа)\b", rest)
            and not re.match(r"\s+часа\s+дня", rest)
        ):
            continue  # «на два дня», «на три часа» are durations
        if match.group("prep") == "с":
            continue
        hour = _apply_daypart(lexicon.HOUR_WORDS[word], daypart_after(match.end()))
        candidates.append((match.start("word"), match.end(), f"{hour:02d}:00", match.group("prep")))
    for match in HALF_RE.finditer(norm):
        hour = lexicon.HALF_HOUR_ORDINALS[match.group("ordinal")]
        part = daypart_after(match.end())
        hour = 12 if hour == 0 and part is None else _apply_daypart(hour, part) if hour else hour
        candidates.append((match.start(), match.end(), f"{hour:02d}:30", None))
    candidates.sort()
    kept = []
    for index, (start, end, value, prep) in enumerate(candidates):
        if _negated_or_time_foreign(norm, start):
            continue
        # a move «с 12 на 15:00» keeps the new time
        if (
            prep == "с"
            and index + 1 < len(candidates)
            and re.match(r"\s*на\s", norm[end : candidates[index + 1][0]])
        ):
            continue
        kept.append(value)
    return kept[0] if kept else None


def _negated_or_time_foreign(norm: str, start: int) -> bool:
    before = norm[max(0, start - 12) : start]
    return bool(
        re.search(r"(?:^|\s)не\s+(?:в|во|к|на|после)?\s*$", before) or re.search(r"через\s+$", before)
    )


# --------------------------------------------------------------------------- names


def _name_parse(word: str) -> Any | None:
    if len(word) < 2 or not word[0].isupper():
        return None
    lower = word.lower()
    if not _is_known(lower):
        return None
    names = [p for p in morph().parse(lower) if "Name" in p.tag]
    nominative = [p for p in names if "nomn" in p.tag and "sing" in p.tag]
    return (nominative or names or [None])[0]


def _nominative(word: str, parse: Any) -> str:
    if "nomn" in parse.tag and "sing" in parse.tag:
        return word[0].upper() + word[1:].lower()
    inflected = parse.inflect({"nomn", "sing"})
    form = inflected.word if inflected else parse.normal_form
    return form[0].upper() + form[1:]


def _latin_name(word: str) -> str | None:
    if not (word[:1].isupper() and word.isascii() and word.isalpha() and len(word) >= 3):
        return None
    return word if _name_parse(transliterate(word).capitalize()) else None


def _first_name_in(words: list[str]) -> str | None:
    for word in words[:3]:
        if word.lower() in lexicon.NAME_PLACEHOLDERS:
            return None
        parse = _name_parse(word[:1].upper() + word[1:]) if word[:1].isalpha() else None
        if parse is not None:
            return _nominative(word, parse)
        latin = _latin_name(word[:1].upper() + word[1:]) if word.isascii() else None
        if latin:
            return latin
    return None


OWN_NAME_RES = (
    _lazy_re(r"\bменя\s+зовут\s+(\w+)", re.IGNORECASE),
    _lazy_re(r"\bменя\s+(\w+)\s+зовут\b", re.IGNORECASE),
    _lazy_re(r"\bмо[её]\s+имя\s+(\w+)", re.IGNORECASE),
    _lazy_re(r"\bзовут\s+(\w+)", re.IGNORECASE),
    _lazy_re(r"(?:^|[\s,.!])(?:это|я)\s+(\w+)", re.IGNORECASE),
    _lazy_re(r"\bс\s+уважением,?\s+(\w+)", re.IGNORECASE),
    _lazy_re(r"\bmy name is\s+(\w+)|\bменя\s+zovut\s+(\w+)|\bmenya zovut\s+(\w+)", re.IGNORECASE),
)
BOOKED_PERSON_RES = (
    _lazy_re(r"\bна\s+имя\s+(\w+)", re.IGNORECASE),
    _lazy_re(r"^\s*на\s+(\w+)", re.IGNORECASE),
)


def extract_name(message: Message) -> str | None:
    for key in ("имя", "name"):
        if key in message.form_fields:
            words = message.form_fields[key].split()
            return _first_name_in(words) if words else None
    raw = message.raw
    for answer in message.operator_asked_name:
        words = re.findall(r"[A-Za-zА-Яа-яЁё]+", answer)
        if words and words[0].lower() == "на":
            continue  # «на Наталью» names the person being booked: a fallback below
        name = _first_name_in([w[:1].upper() + w[1:] for w in words])
        if name:
            return name
    for pattern in OWN_NAME_RES:
        for match in pattern.finditer(raw):
            word = next(g for g in match.groups() if g)
            name = (
                _first_name_in([word[:1].upper() + word[1:]])
                if word[:1].isupper() or "зовут" in match.group(0)
                else None
            )
            if name:
                return name
    signature = _signature_name(raw)
    if signature:
        return signature
    for answer in message.operator_asked_name:
        answer_match = BOOKED_PERSON_RES[1].match(answer)
        if answer_match:
            word = answer_match.group(1)
            name = _first_name_in([word[:1].upper() + word[1:]])
            if name:
                return name
    booked = BOOKED_PERSON_RES[0].search(raw)
    if booked:
        name = _first_name_in([booked.group(1)])
        if name:
            return name
    return _relative_name(raw)


SEGMENT_RE = _lazy_re(r"[\w\s\-+]+(?:[^\w\s\-+]+|$)")
LEADING_NAME_RE = _lazy_re(r"^\s*([А-ЯЁ][а-яё]+)(?:\s*,|\s+(?=(?:\+7|8)?[\s\-(]*\d{3}))")


def _signature_name(raw: str) -> str | None:
    """A name standing alone between punctuation or emoji: «…в 12, Света, 8913…», «…15:00? Марина»."""
    leading = LEADING_NAME_RE.match(raw)
    if leading and leading.group(1).lower() not in lexicon.GREETING_WORDS:
        parse = _name_parse(leading.group(1))
        if parse is not None:
            return _nominative(leading.group(1), parse)
    for match in SEGMENT_RE.finditer(raw):
        segment = match.group(0)
        if "?" in segment[len(segment.rstrip("?!.,;:)( ")) :] or segment.rstrip().endswith("?"):
            continue  # «Сергей?» asks for somebody else
        words = re.findall(r"[A-Za-zА-Яа-яЁё]+", segment)
        if not 1 <= len(words) <= 3:
            continue
        rest = re.sub(r"[A-Za-zА-Яа-яЁё]+", "", segment)
        if re.search(r"\d", rest) and not re.search(r"\d{5,}|\d[\d\s\-()]{8,}", rest):
            continue
        if words[0].lower() in lexicon.STAFF_WORDS or words[0].lower() in lexicon.GREETING_WORDS:
            continue
        parse = _name_parse(words[0])
        if parse is not None and all(_name_or_surname(w) for w in words[1:]):
            return _nominative(words[0], parse)
        if len(words) == 1:
            latin = _latin_name(words[0])
            if latin:
                return latin
    return None


def _name_or_surname(word: str) -> bool:
    if not word[:1].isupper():
        return word.lower() in {"тел", "телефон", "номер"}
    return any(tag in parse.tag for parse in morph().parse(word.lower()) for tag in ("Name", "Surn", "Patr"))


def _relative_name(raw: str) -> str | None:
    words = re.findall(r"[A-Za-zА-Яа-яЁё]+", raw)
    for index, word in enumerate(words):
        # «записать маму, Галину»: the relative is being booked; «подруга Маша посоветовала» is not a booking
        booked = any(w.lower().startswith(("запис", "запиш")) for w in words[max(0, index - 4) : index])
        if booked and word.lower() in lexicon.RELATIVE_WORDS:
            for follower in words[index + 1 : index + 4]:
                parse = _name_parse(follower)
                if parse is not None:
                    return _nominative(follower, parse)
    return None


# --------------------------------------------------------------------------- intent


@functools.cache
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.MULTILINE)


def _any(patterns: tuple[str, ...], text: str) -> bool:
    return bool(_compiled(patterns).search(text))


def _content_words(message: Message) -> list[str]:
    return [t.text for t in message.tokens if t.text not in lexicon.GREETING_WORDS]


def detect_intent(message: Message, service: str | None, has_when: bool, has_contact: bool) -> Intent:
    norm = message.norm
    text = norm
    if message.is_form:
        comment = message.form_fields.get("комментарий", message.form_fields.get("comment", ""))
        text = comment.lower().replace("ё", "е")
        name = message.form_fields.get("имя", message.form_fields.get("name", "")).lower().strip()
        if name in lexicon.NAME_PLACEHOLDERS or re.fullmatch(r"\s*тест\w*\s*", text):
            return Intent.not_target
    if _any(lexicon.NOT_TARGET_PATTERNS, text):
        return Intent.not_target
    booking = _any(lexicon.BOOKING_PATTERNS, _strip_negated(text))
    wish = _any(lexicon.WISH_PATTERNS, text)
    question = _any(lexicon.QUESTION_PATTERNS, text)
    wished = wish and bool(service or has_when) and not _wish_is_question(text)
    if _any(lexicon.NEGATIVE_REVIEW_PATTERNS, text) and not booking and not wished:
        return Intent.not_target
    if not service and not booking and _asks_for_somebody(message.raw):
        return Intent.not_target
    if booking or wished:
        return Intent.booking
    if question:
        return Intent.question
    if service or has_when:
        return Intent.booking  # «брови завтра в 10?», «маникюр к 11 есть?»: a slot asked for
    if "?" in text:
        return Intent.question
    if message.is_form and has_contact:
        return Intent.booking
    if not _content_words(message):
        return Intent.not_target
    return Intent.not_target if not wish else Intent.booking


ASKS_FOR_SOMEBODY_RE = _lazy_re(r"(?:^|[\s,.!])(?:алло,?\s+)?([А-ЯЁ][а-яё]+)\s*\?")


def _asks_for_somebody(raw: str) -> bool:
    """«алло, Сергей?»: a caller asking for a person we do not know is a wrong number."""
    return any(_name_parse(m.group(1)) is not None for m in ASKS_FOR_SOMEBODY_RE.finditer(raw))


def _strip_negated(text: str) -> str:
    return re.sub(r"\bне\s+(?:\w+\s+)?(?:приду|придем|подойду|приеду|запишусь)\b", " ", text)


def _wish_is_question(text: str) -> bool:
    """«можно оплатить картой?» is a question; «можно на завтра?» is a booking."""
    for match in re.finditer(r"\bможно\s+(?:ли\s+)?(\w+)", text):
        if re.match(r"оплат|расплат|узнать|уточнить|спросить|у\b|с\b|картой|наличн|парков", match.group(1)):
            return True
    return False


# --------------------------------------------------------------------------- entry point


def qualify_offline(
    text: str,
    received_at: datetime,
    services: Sequence[Service],
    *,
    tz: ZoneInfo,
    channel: str = "",
) -> Qualification:
    """Qualify one message by rules; ``received_at`` must be timezone-aware."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    today = received_at.astimezone(tz).date()
    channel = (channel or "").lower()
    message = prepare(text, channel)
    catalog = Catalog.of(services)
    service = match_service(message, catalog)
    preferred_date = extract_date(message, today)
    preferred_time = extract_time(message)
    phone = extract_phone(text, channel)
    name = extract_name(message)
    intent = detect_intent(message, service, bool(preferred_date or preferred_time), bool(phone or name))
    urgent = _any(lexicon.URGENT_PATTERNS, message.norm)
    if intent == Intent.not_target:
        service, preferred_date, preferred_time = None, None, None
        urgent = False
    if intent == Intent.booking:
        near = preferred_date is not None and 0 <= (preferred_date - today).days <= 2
        temperature = Temperature.hot if near or urgent else Temperature.warm
    else:
        temperature = Temperature.cold
        urgent = False
    return Qualification(
        intent=intent,
        temperature=temperature,
        service=service,
        preferred_date=preferred_date,
        preferred_time=preferred_time,
        name=name,
        phone=phone,
        urgent=urgent,
        engine="offline",
    )


def warm_up(services: Iterable[Service] = ()) -> None:
    """Load the morphology dictionaries and phonenumbers now (for a Lambda init phase)."""
    import phonenumbers  # noqa: F401

    morph()
    services = tuple(services)
    if services:
        Catalog.of(services)
