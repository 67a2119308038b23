"""Which branch a lead belongs to, for a business with more than one.

From the surest sign to the weakest:
1. what the sender named: a `?branch=` on the webhook URL, a form's «Филиал» field;
2. what the client reached: a branch's own line (the number called, its WhatsApp number), its VK
   community or Instagram account (`phones`, `accounts` in the branch's config);
3. a branch the client names in the message — «на Тверской», «в Химках»: its name or an alias,
   in any word form; none when the message names two;
4. (by the caller) the branch of the client's previous lead.
A lead whose branch stays unknown is asked for it (leadflow.domain.replies) and routed over all staff.
"""

from __future__ import annotations

from leadflow.business import Branch, BusinessConfig
from leadflow.domain.models import InboundMessage


def branch_for(business: BusinessConfig, message: InboundMessage) -> str | None:
    if len(business.branches) < 2:
        return None
    return (
        (branch_named(business, message.branch) if message.branch else None)
        or (branch_reached(business, message.recipient) if message.recipient else None)
        or branch_mentioned(business, message.text)
    )


def branch_named(business: BusinessConfig, name: str) -> str | None:
    """A branch by its id, name or alias as someone typed it («center», «Тверская»), or mentioned
    in a longer value («салон на Тверской»)."""
    wanted = name.strip().casefold()
    for branch in business.branches:
        if wanted in {branch.id.casefold(), *(n.casefold() for n in _names(branch))}:
            return branch.id
    return branch_mentioned(business, name)


def branch_reached(business: BusinessConfig, recipient: str) -> str | None:
    """The branch whose number or account the client wrote to or called."""
    return next((b.id for b in business.branches if recipient in b.phones or recipient in b.accounts), None)


def branch_mentioned(business: BusinessConfig, text: str) -> str | None:
    """The one branch whose name or alias occurs in the text, in any word form."""
    if not text.strip():
        return None
    words = _lemmatised(text)
    found = {
        branch.id
        for branch in business.branches
        for name in _names(branch)
        if _occurs(_lemmatised(name), words)
    }
    return found.pop() if len(found) == 1 else None


def _names(branch: Branch) -> list[str]:
    return [branch.name, *branch.aliases] if branch.name else list(branch.aliases)


def _lemmatised(text: str) -> list[frozenset[str]]:
    from leadflow.domain.qualify.morphology import lemmas_of
    from leadflow.domain.qualify.text import WORD_RE

    return [lemmas_of(word) for word in WORD_RE.findall(text.lower().replace("ё", "е"))]


def _occurs(phrase: list[frozenset[str]], words: list[frozenset[str]]) -> bool:
    """Each word of the phrase shares a normal form with the text's word at the same place."""
    n = len(phrase)
    return n > 0 and any(all(phrase[k] & words[i + k] for k in range(n)) for i in range(len(words) - n + 1))
