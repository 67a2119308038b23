"""Which catalog services a message asks for: a lemmatised keyword index per catalog."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    from leadflow.business import Service
from leadflow.domain.qualify.morphology import edit_distance_at_most, is_known_word, lemmas_of, morph
from leadflow.domain.qualify.text import MAX_PHRASE_GAP, WORD_RE, Message, Token


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
        if not is_known_word(token.text) and len(token.text) >= 5:
            return token.lemmas | self._fuzzy(token.text)
        return token.lemmas

    @functools.lru_cache(maxsize=20_000)  # noqa: B019 — one Catalog per service list, kept for the process
    def _fuzzy(self, word: str) -> frozenset[str]:
        limit = 1 if len(word) < 8 else 2
        return frozenset(
            v for v in self.vocabulary if v[0] == word[0] and edit_distance_at_most(word, v, limit)
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
                    # the longest phrase; of two as long, the tighter («ламинирование ресниц и бровей»)
                    if end is not None and (
                        best is None
                        or len(phrase.lemmas) > len(best[1].lemmas)
                        or (len(phrase.lemmas) == len(best[1].lemmas) and end < best[0])
                    ):
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


def match_services(message: Message, catalog: Catalog) -> list[str]:
    """Every catalog id the client wants, in the order mentioned (LABELING.md: `services`)."""
    services: list[str] = []
    for service, _ in find_services(message, catalog):
        if service not in services:
            services.append(service)
    return services


def find_services(message: Message, catalog: Catalog) -> list[tuple[str, int]]:
    """(catalog id, clause) of every service mention the client wants, left to right."""
    every = catalog.matches(message)
    found = [(i, sid, clause) for i, sid, clause in every if clause not in message.past_clauses]
    tokens = message.tokens
    if not found and every and _asks_for_a_repeat(message):
        found = every  # «была у вас на стрижке, хочу ещё раз»: a repeat of a past service is that service
    if not found:
        return []
    # a word of a service we do not offer («отбелить зубы», «диагностика подвески») takes its clause
    blocked = {t.clause for t in tokens if t.lemmas & NOT_IN_CATALOG}
    found = [
        m
        for m in found
        if (m[2] not in blocked or m[1] not in _GENERIC_IN_BLOCKED)
        # an ending («концы», «корни») next to «недели», «месяца» is not a service
        and not _is_time_phrase(message, m[0])
        # «без покрытия»: a keyword under negation does not count
        and not (m[0] and tokens[m[0] - 1].text in NEGATIONS)
    ]
    found = [m for m in found if m[1] != "hair_coloring" or not _brow_tint(message, m[0], found)]
    if not found:
        return []
    active = [t for t in tokens if t.clause not in message.past_clauses]
    lemmas: set[str] = set()
    for token in active:
        lemmas |= token.lemmas
    ids = set(catalog.service_ids)
    male = "haircut_men" in ids and not lemmas.isdisjoint(MALE_CUES)
    coated = "gel_polish" in ids and _has_coating(active)
    treated = "dental_treatment" in ids and not lemmas.isdisjoint(DENTAL_TREATMENT_CUES)
    services: list[tuple[str, int]] = []
    for _, service, clause in found:
        if service == "haircut_women" and male:
            service = "haircut_men"
        elif service == "manicure" and coated:
            service = "gel_polish"
        elif service == "dental_checkup" and treated:
            service = "dental_treatment"  # pain outweighs «осмотр», «консультация»
        services.append((service, clause))
    return services


def match_service(message: Message, catalog: Catalog) -> str | None:
    services = match_services(message, catalog)
    return services[0] if services else None


NOT_IN_CATALOG = frozenset(lexicon.NOT_IN_CATALOG)
MALE_CUES = frozenset(lexicon.MALE_CUES)
DENTAL_TREATMENT_CUES = frozenset(lexicon.DENTAL_TREATMENT_CUES)
COATING_CUES = frozenset(lexicon.COATING_CUES)
NEGATIONS = frozenset({"без", "without", "no"})
_COLOURING_WORDS = frozenset(
    {"окрашивание", "окрасить", "покраска", "покрасить", "покраситься", "тонирование"}
)


# a repeat or a redo of a past service asks for that service again
REPEAT_WORDS = frozenset(
    {"снова", "опять", "повторить", "повторно", "переделать", "исправить", "поправить", "again", "redo"}
)


def _asks_for_a_repeat(message: Message) -> bool:
    tokens = message.tokens
    for index, token in enumerate(tokens):
        if token.clause in message.past_clauses:
            continue
        if not token.lemmas.isdisjoint(REPEAT_WORDS) or (
            token.text == "еще" and index + 1 < len(tokens) and tokens[index + 1].text == "раз"
        ):
            return True
    return False


def _brow_tint(message: Message, index: int, found: list[tuple[int, str, int]]) -> bool:
    """«окрашивание» next to «брови» is brow tint: it belongs to brows, not to hair colouring."""
    tokens = message.tokens
    if not tokens[index].lemmas & _COLOURING_WORDS:
        return False
    if any("волос" in t.lemmas for t in tokens[index + 1 : index + 3]):
        return False
    return any(sid in ("brows", "lashes") and abs(i - index) <= 3 for i, sid, _ in found)


_GENERIC_IN_BLOCKED = frozenset({"dental_checkup", "dental_treatment", "dental_cleaning", "tire_change"})


def _is_time_phrase(message: Message, index: int) -> bool:
    tokens = message.tokens
    if index + 1 < len(tokens) and tokens[index].text.startswith("конц"):
        return bool(tokens[index + 1].lemmas & {"неделя", "месяц", "день", "год", "рабочий"})
    return False


def _has_coating(tokens: list[Token]) -> bool:
    for index, token in enumerate(tokens):
        if not token.lemmas.isdisjoint(COATING_CUES):
            before = tokens[index - 1].text if index else ""
            if before not in NEGATIONS:
                return True
    return False
