"""The one parser for settings that hold a list: `A:B,C:D` in the environment, a TOML
table or array in `.streamlit/secrets.toml`. Roles, bearer tokens, revenue per tier,
account-manager addresses and alert thresholds all come in one of these forms."""

from __future__ import annotations

from collections.abc import Mapping


def items(value: object) -> list[str]:
    """`80,90,100` or a TOML array: the non-empty items, stripped."""
    raw = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(item).strip() for item in raw if str(item).strip()]


def pairs(value: object, sep: str) -> list[tuple[str, str]]:
    """`KEY<sep>VALUE,...` or a TOML table: (key, value) pairs, stripped. The split is at
    the last `sep`, so a key may contain it (an email address before `:role`). An item
    without `sep` becomes (item, ""), for the caller to refuse with its own words."""
    if isinstance(value, Mapping):
        return [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    out = []
    for item in items(value):
        key, found, val = item.rpartition(sep)
        out.append((key.strip(), val.strip()) if found else (item, ""))
    return out
