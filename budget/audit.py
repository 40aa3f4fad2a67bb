"""The audit log as people read it: one action name per kind of change, and what an
entry changed, field by field (old -> new), never a dump of the stored dicts.

An attribute entry keeps, per attribute, its name and only the fields that changed;
older entries that kept every text still read the same way, because only the fields
whose values differ are shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd

from .model import FIELDS, Attribute, AuditEntry, Change
from .optimize import text_diff
from .views import label

# the stored action of each kind of change -> what a person reads
ACTIONS: dict[str, str] = {
    "attribute.edit": "Attribute text edited",
    "attribute.activate": "Attribute activated",
    "attribute.deactivate": "Attribute deactivated",
    "attribute.bulk_activate": "Attributes activated together",
    "attribute.bulk_deactivate": "Attributes deactivated together",
    "attribute.switch": "Attributes switched on and off together",
    "attribute.batch_edit": "Batch edit (one template, several clients)",
    "attribute.suggestion": "Saving suggestion applied",
    "attribute.update": "Attribute changed (entry from before the action names)",
    "reset": "Budget reset",
    "service_level": "Service level changed",
    "budget_override": "Budget override",
    "topup": "Top-up",
    "tier_limit": "Tier limit changed",
    "encoding": "Tokenizer changed",
    "auto_deactivate": "Automatic deactivation",
    "auto_restore": "Automatic deactivation undone",
    "auto_deactivate_policy": "Automatic deactivation policy",
}
# stored field names whose plain label would mislead
FIELD_LABELS = {"token_budget": "Budget override", "budget": "Budget in force",
                "topup": "Top-up", "budget_reset_date": "Next reset"}
SHORT = 80  # characters from which a text is shown as the part that changed


def action_label(action: str) -> str:
    return ACTIONS.get(action, label(action))


def is_attribute_action(action: str) -> bool:
    """Any change to an attribute's texts or flag, whichever door it came through."""
    return action.startswith("attribute.")


def change_action(change: Change) -> str:
    """The action name of an attribute change, from what it changes: a text edit (with
    or without the flag), one attribute switched on or off, or several together."""
    flags = set(change.active.values())
    if change.fields or not flags:
        return "attribute.edit"
    bulk = len(change.active) > 1
    if flags == {True}:
        return "attribute.bulk_activate" if bulk else "attribute.activate"
    if flags == {False}:
        return "attribute.bulk_deactivate" if bulk else "attribute.deactivate"
    return "attribute.switch"


def _state(a: Attribute) -> dict:
    return {"active": a.active, **{f.lower(): a.text(f) for f in FIELDS}}


def attribute_states(before: Mapping[str, Attribute],
                     after: Mapping[str, Attribute]) -> tuple[dict, dict]:
    """An attribute entry's before and after: per attribute its name and the fields that
    changed, so an edit of Signals does not repeat all three texts twice."""
    old, new = {}, {}
    for aid, a in after.items():
        b, n = _state(before[aid]), _state(a)
        changed = [k for k in n if b[k] != n[k]]
        old[aid] = {"name": before[aid].name, **{k: b[k] for k in changed}}
        new[aid] = {"name": a.name, **{k: n[k] for k in changed}}
    return old, new


@dataclass(frozen=True)
class FieldChange:
    """One field of one entry: `subject` is the attribute's name ('' for the client or
    tier itself); `context` marks a figure recorded with the change (a reason, the usage
    after), which has no before."""

    subject: str
    field: str
    before: object
    after: object
    context: bool = False


def field_changes(entry: AuditEntry) -> list[FieldChange]:
    """The fields an entry changed, in the order they were recorded. Inside an attribute
    a field counts only when both sides recorded it (an automatic deactivation notes the
    tokens it saved on one side only)."""
    out = []
    for key in dict.fromkeys([*entry.before, *entry.after]):
        b, a = entry.before.get(key), entry.after.get(key)
        if isinstance(b, Mapping) or isinstance(a, Mapping):
            b, a = b if isinstance(b, Mapping) else {}, a if isinstance(a, Mapping) else {}
            subject = str(a.get("name") or b.get("name") or key)
            out += [FieldChange(subject, f, b[f], a[f]) for f in b
                    if f != "name" and f in a and b[f] != a[f]]
        elif key not in entry.before:
            out.append(FieldChange("", str(key), None, a, context=True))
        elif b != a:
            out.append(FieldChange("", str(key), b, a))
    return out


def value_text(value: object) -> str:
    """A recorded value as a person reads it: '5,000', 'yes', a dash for nothing."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value) or "—"
    return str(value)


def _changed_part(before: str, after: str) -> tuple[str, str]:
    """The two texts without the words they share at the start and the end, so a
    one-word edit in a 2,000-character text reads as that word."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while (end < min(len(before), len(after)) - start
           and before[-1 - end] == after[-1 - end]):
        end += 1
    start = before.rfind(" ", 0, start) + 1  # whole words either side
    space = before[len(before) - end:].find(" ") if end else -1
    end = end - space if space >= 0 else 0

    def cut(text: str) -> str:
        middle = text[start:len(text) - end]
        if len(middle) > SHORT:
            middle = middle[:SHORT // 2] + " … " + middle[-SHORT // 2:]
        return ("…" if start else "") + middle + ("…" if end else "")
    return cut(before), cut(after)


def _long(value: object) -> bool:
    return isinstance(value, str) and (len(value) > SHORT or "\n" in value)


def _name(c: FieldChange) -> str:
    field = FIELD_LABELS.get(c.field, label(c.field))
    return f"{c.subject} · {field}" if c.subject else field


def change_line(c: FieldChange) -> str:
    """'Size · Instructions: …old words… → …new words…', one line for a table cell."""
    name = _name(c)
    if c.context:
        return f"{name}: {value_text(c.after)}"
    before, after = value_text(c.before), value_text(c.after)
    if _long(c.before) or _long(c.after):
        before, after = _changed_part(str(c.before or ""), str(c.after or ""))
        before, after = before or "—", after or "—"
    return f"{name}: {before} → {after}"


def entry_diff(entry: AuditEntry) -> str:
    """Every change of one entry in full: short values as 'old → new', long texts as a
    sentence-by-sentence diff."""
    out: list[str] = []
    for c in field_changes(entry):
        if not c.context and (_long(c.before) or _long(c.after)):
            name = _name(c)
            out += text_diff(str(c.before or ""), str(c.after or ""), f"{name} (before)",
                             f"{name} (after)")
        else:
            out.append(change_line(c))
    return "\n".join(out) or "nothing changed"


COLUMNS = ["at", "actor", "action", "what", "client_id", "client", "changes"]


def audit_frame(entries: Sequence[AuditEntry], names: Mapping[str, str]) -> pd.DataFrame:
    """One row per entry, newest first, with the client's name next to its id and the
    changes as 'field: old → new'."""
    rows = [{"at": e.at, "actor": e.actor, "action": e.action, "what": action_label(e.action),
             "client_id": e.client_id or "",
             "client": f"{names.get(e.client_id, e.client_id)} ({e.client_id})"
             if e.client_id else "—",
             "changes": "; ".join(change_line(c) for c in field_changes(e)) or "—"}
            for e in entries]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.iloc[::-1].reset_index(drop=True)  # the log is stored oldest first


def filter_audit(frame: pd.DataFrame, clients: Sequence[str] = (), actors: Sequence[str] = (),
                 actions: Sequence[str] = (), first: date | None = None,
                 last: date | None = None) -> pd.DataFrame:
    """The entries matching every filter given; an empty filter keeps everything."""
    mask = pd.Series(True, index=frame.index)
    if clients:
        mask &= frame["client_id"].isin(clients)
    if actors:
        mask &= frame["actor"].isin(actors)
    if actions:
        mask &= frame["action"].isin(actions)
    days = frame["at"].dt.date
    if first is not None:
        mask &= days >= first
    if last is not None:
        mask &= days <= last
    return frame[mask]
