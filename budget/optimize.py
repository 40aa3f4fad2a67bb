"""Ways to spend fewer tokens without changing what a prompt means: deterministic,
offline, and each measured with the real counter."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from .model import FIELDS, Attribute

Count = Callable[[Sequence[str]], list[int]]

_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]*\s*|\n")
NEAR = 0.92  # SequenceMatcher ratio from which two sentences say the same thing


@dataclass(frozen=True)
class Suggestion:
    kind: str  # costly | whitespace | duplicate | boilerplate
    attribute_id: str
    attribute: str
    field: str | None
    message: str
    saves: int
    new_text: str | None = None  # the field's text after the fix, when one applies


def sentences(text: str) -> list[str]:
    """Sentences and line breaks, in order; joining them gives the text back."""
    return _SENTENCE.findall(text)


def _key(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def collapse_whitespace(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def drop_duplicate_sentences(text: str) -> str:
    """Keeps the first of each sentence that repeats (exactly or nearly) in the text."""
    kept: list[str] = []
    seen: list[str] = []
    for s in sentences(text):
        k = _key(s)
        if k and (k in seen or any(SequenceMatcher(None, k, o).ratio() >= NEAR for o in seen
                                   if abs(len(o) - len(k)) < 0.1 * len(k) + 3)):
            continue
        if k:
            seen.append(k)
        kept.append(s)
    return collapse_whitespace("".join(kept)) if kept != sentences(text) else text


def suggest(attrs: Sequence[Attribute], count: Count, top: int = 3) -> list[Suggestion]:
    """Suggestions for one client's active attributes, largest saving first."""
    active = [a for a in attrs if a.active]
    out: list[Suggestion] = []
    texts = {(a.id, f): a.text(f) for a in active for f in FIELDS}
    n = dict(zip(texts, count(list(texts.values()))))

    for a in sorted(active, key=lambda a: -sum(n[a.id, f] for f in FIELDS))[:top]:
        total = sum(n[a.id, f] for f in FIELDS)
        field = max(FIELDS, key=lambda f: n[a.id, f])
        out.append(Suggestion("costly", a.id, a.name, field,
                              f"'{a.name}' costs {total:,} tokens, most of them in {field} "
                              f"({n[a.id, field]:,}); deactivating it saves {total:,}", total))

    for (aid, field), text in texts.items():
        a = next(x for x in active if x.id == aid)
        for kind, fixed, what in (
                ("duplicate", drop_duplicate_sentences(text), "repeated sentences"),
                ("whitespace", collapse_whitespace(text), "extra whitespace")):
            if fixed != text:
                saves = n[aid, field] - count([fixed])[0]
                if saves > 0:
                    out.append(Suggestion(kind, aid, a.name, field,
                                          f"{field} of '{a.name}' has {what}", saves, fixed))
                    break  # the duplicate fix also collapses whitespace

    where: dict[str, list[tuple[Attribute, str, str]]] = defaultdict(list)
    for a in active:
        for f in FIELDS:
            for s in {_key(s): s for s in sentences(a.text(f)) if len(_key(s)) > 20}.values():
                where[_key(s)].append((a, f, s.strip()))
    for key, places in where.items():
        owners = {a.id for a, _, _ in places}
        if len(owners) < 2:
            continue
        per = count([places[0][2]])[0]
        first, *rest = places
        names = ", ".join(sorted({a.name for a, _, _ in rest}))
        out.append(Suggestion("boilerplate", first[0].id, first[0].name, first[1],
                              f"'{first[2][:60]}…' appears in {len(owners)} attributes "
                              f"({first[0].name}, {names}); state it once", per * (len(places) - 1)))
    return sorted(out, key=lambda s: (s.kind == "costly", -s.saves))
