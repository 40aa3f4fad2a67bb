"""Ways to spend fewer tokens without changing what a prompt means: deterministic,
offline, and each measured with the real counter.

A fix is only suggested when the real count goes down, so applying one never costs
tokens; every sentence that is not a repeat of an earlier one is kept."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher, unified_diff
from functools import lru_cache

from .model import FIELDS, Attribute, Change

Count = Callable[[Sequence[str]], list[int]]
Edits = Mapping[str, Mapping[str, str]]  # attribute id -> field -> text

_END = ".!?。！？"
# a sentence: text up to its closing marks, or closing marks with no text before them
# ("? ?"), then its spacing; a line break on its own. Every character is in one of them.
_SENTENCE = re.compile(rf"(?:[^{_END}\n]+[{_END}]*|[{_END}]+)\s*|\n")
NEAR = 0.92  # SequenceMatcher ratio from which two sentences say the same thing
BOILERPLATE_MIN_CHARS = 20  # shorter repeats ("Example:") are not worth a suggestion


@dataclass(frozen=True)
class Suggestion:
    """One way to save tokens. `edits` are the new texts (none for 'costly', which only
    points at an expensive attribute); `before` the texts they replace."""

    kind: str  # costly | whitespace | duplicate | boilerplate | all | rewrite
    attribute_id: str
    attribute: str
    field_name: str | None
    message: str
    saves: int
    edits: Edits = field(default_factory=dict)
    before: Edits = field(default_factory=dict)

    def change(self, client_id: str) -> Change:
        """The edits as a change for `BudgetService.apply` (validated and audited there)."""
        return Change(client_id, {aid: dict(fields) for aid, fields in self.edits.items()})

    def diff(self) -> str:
        """A unified diff of every edit, one sentence a line, so a person sees exactly
        which sentences go."""
        out: list[str] = []
        for aid, fields in self.edits.items():
            for name, new in fields.items():
                out += text_diff(self.before[aid][name], new, f"{aid} {name} (now)",
                                 f"{aid} {name} (suggested)")
        return "\n".join(out)


def text_diff(old: str, new: str, old_label: str, new_label: str) -> list[str]:
    """A unified diff of two texts, one sentence a line: a long text reads as the
    sentences that went and came, not as two walls of text."""
    return list(unified_diff(_lines(old), _lines(new), old_label, new_label, n=1,
                             lineterm=""))


def _lines(text: str) -> list[str]:
    return [s.strip() for s in sentences(text) if s.strip()]


def sentences(text: str) -> list[str]:
    """Sentences and line breaks, in order; joining them gives the text back."""
    return _SENTENCE.findall(text)


def _join(kept: Iterable[str]) -> str:
    """Sentences back into one text, each still a sentence of its own: one that opens
    with closing marks ("?") would otherwise close the one before it when nothing
    separates them."""
    out: list[str] = []
    for s in kept:
        if out and s[0] in _END and not out[-1][-1].isspace():
            out.append(" ")
        out.append(s)
    return "".join(out)


def sentence_key(sentence: str) -> str:
    """What a sentence says, ignoring case and spacing."""
    return " ".join(sentence.lower().split())


@lru_cache(maxsize=1 << 12)
def _characters(key: str) -> Counter[str]:
    """The characters of a sentence key as a multiset, made once per key: comparing two
    of them bounds how alike the keys can be without building a SequenceMatcher."""
    return Counter(key)


@lru_cache(maxsize=1 << 16)
def near(a: str, b: str) -> bool:
    """Two sentence keys that say the same thing, exactly or nearly. The cheap upper
    bounds go first, so most pairs are told apart without the full comparison: the
    lengths, then the characters in common (SequenceMatcher's quick_ratio, from each
    key's multiset of characters, made once per key rather than once per pair)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) >= 0.1 * len(a) + 3:
        return False
    common = (_characters(a) & _characters(b)).total()
    if 2.0 * common / (len(a) + len(b)) < NEAR:
        return False
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= NEAR


def collapse_whitespace(text: str) -> str:
    """Runs of spaces become one, blank lines go. Lines end only at '\n', as sentences do,
    so a stray '\r' turns into a space rather than a new sentence."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def drop_duplicate_sentences(text: str) -> str:
    """Keeps the first of each sentence that repeats (exactly or nearly) in the text."""
    kept: list[str] = []
    seen: dict[str, None] = {}  # insertion-ordered set
    for s in sentences(text):
        k = sentence_key(s)
        if k and (k in seen or any(near(k, o) for o in seen)):
            continue
        if k:
            seen[k] = None
        kept.append(s)
    return collapse_whitespace(_join(kept)) if kept != sentences(text) else text


def best_fix(text: str, count: Count) -> tuple[str, str, int] | None:
    """(kind, fixed text, tokens saved) of the deterministic fix that saves the most,
    or None when no fix lowers the real count."""
    fixes = [(kind, fixed) for kind, fixed in (("duplicate", drop_duplicate_sentences(text)),
                                               ("whitespace", collapse_whitespace(text)))
             if fixed != text]
    if not fixes:
        return None
    now, *after = count([text, *(fixed for _, fixed in fixes)])
    kind, fixed, saves = max(((k, f, now - n) for (k, f), n in zip(fixes, after, strict=True)),
                             key=lambda x: x[2])
    return (kind, fixed, saves) if saves > 0 else None


def optimise_text(text: str, count: Count) -> str:
    """The text after its best deterministic fix; the text itself when none saves tokens."""
    fix = best_fix(text, count)
    return fix[1] if fix else text


def _without(text: str, key: str) -> str:
    return collapse_whitespace(_join(s for s in sentences(text) if sentence_key(s) != key))


def boilerplate(attrs: Sequence[Attribute], count: Count) -> list[Suggestion]:
    """Sentences repeated across a client's attributes: keep the first, drop the copies.
    The prompt holds every active attribute, so the rule is still stated once."""
    where: dict[str, list[tuple[Attribute, str, str]]] = defaultdict(list)
    for a in attrs:
        for f in FIELDS:
            for key, s in {sentence_key(s): s for s in sentences(a.text(f))}.items():
                if len(key) > BOILERPLATE_MIN_CHARS:
                    where[key].append((a, f, s.strip()))
    out = []
    for key, places in where.items():
        if len({a.id for a, _, _ in places}) < 2:
            continue
        (first, first_field, text), *rest = places
        before: dict[str, dict[str, str]] = defaultdict(dict)
        edits: dict[str, dict[str, str]] = defaultdict(dict)
        for a, f, _ in rest:
            before[a.id][f] = a.text(f)
            edits[a.id][f] = _without(a.text(f), key)
        olds = [t for fs in before.values() for t in fs.values()]
        news = [t for fs in edits.values() for t in fs.values()]
        n = count(olds + news)
        saves = sum(n[:len(olds)]) - sum(n[len(olds):])
        if saves > 0:
            names = ", ".join(sorted({a.name for a, _, _ in rest}))
            out.append(Suggestion(
                "boilerplate", first.id, first.name, first_field,
                f"'{text[:60]}…' appears in {len(places)} places ({first.name}, {names}); "
                f"keep it in '{first.name}' only", saves, dict(edits), dict(before)))
    return out


def tidy_all(attrs: Sequence[Attribute], count: Count) -> Suggestion | None:
    """Every deterministic fix of one client's active attributes at once, as one change:
    each text's own repeats and whitespace first, then sentences copied across
    attributes kept in the first place only. Its saving is measured on the result, so
    unlike a sum of single suggestions (which overlap) it is what applying it saves.
    A text whose count would not go down is left as it is."""
    active = [a for a in attrs if a.active]
    texts = {(a.id, f): a.text(f) for a in active for f in FIELDS if a.text(f)}
    fixed = {k: optimise_text(t, count) for k, t in texts.items()}
    where: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for place, text in fixed.items():
        for key in dict.fromkeys(map(sentence_key, sentences(text))):
            if len(key) > BOILERPLATE_MIN_CHARS:
                where[key].append(place)
    for key, places in where.items():
        if len({aid for aid, _ in places}) > 1:
            for place in places[1:]:
                fixed[place] = _without(fixed[place], key)
    changed = [k for k in texts if fixed[k] != texts[k]]
    n = count([texts[k] for k in changed] + [fixed[k] for k in changed])
    gains = {k: n[i] - n[len(changed) + i] for i, k in enumerate(changed)}
    kept = [k for k in changed if gains[k] > 0]
    if not kept:
        return None
    edits: dict[str, dict[str, str]] = defaultdict(dict)
    before: dict[str, dict[str, str]] = defaultdict(dict)
    for aid, f in kept:
        edits[aid][f], before[aid][f] = fixed[aid, f], texts[aid, f]
    first = next(a for a in active if a.id in edits)
    return Suggestion("all", first.id, first.name, None,
                      f"every fix together: {len(kept):,} texts in {len(edits):,} attributes",
                      sum(gains[k] for k in kept), dict(edits), dict(before))


def suggest(attrs: Sequence[Attribute], count: Count, top: int = 3) -> list[Suggestion]:
    """Suggestions for one client's active attributes, largest saving first; the
    'costly' pointers (deactivate the biggest) come last."""
    active = [a for a in attrs if a.active]
    out: list[Suggestion] = []
    texts = {(a.id, f): a.text(f) for a in active for f in FIELDS}
    n = dict(zip(texts, count(list(texts.values())), strict=True))

    for a in sorted(active, key=lambda a: -sum(n[a.id, f] for f in FIELDS))[:top]:
        total = sum(n[a.id, f] for f in FIELDS)
        biggest = max(FIELDS, key=lambda f: n[a.id, f])
        out.append(Suggestion("costly", a.id, a.name, biggest,
                              f"'{a.name}' costs {total:,} tokens, most of them in {biggest} "
                              f"({n[a.id, biggest]:,}); deactivating it saves {total:,}", total))

    names = {a.id: a.name for a in active}
    for (aid, f), text in texts.items():
        fix = best_fix(text, count)
        if fix:
            kind, fixed, saves = fix
            what = "repeated sentences" if kind == "duplicate" else "extra whitespace"
            out.append(Suggestion(kind, aid, names[aid], f, f"{f} of '{names[aid]}' has {what}",
                                  saves, {aid: {f: fixed}}, {aid: {f: text}}))
    out += boilerplate(active, count)
    return sorted(out, key=lambda s: (s.kind == "costly", -s.saves))
