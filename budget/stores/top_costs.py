"""The attributes that can make a "most tokens" list, chosen by the database: one query
returns the few active attributes whose total reaches the n-th largest, instead of every
attribute's counts turned into Python objects and sorted there (the Analytics page's
top 20 of 100,000 attributes). Shared by the SQLite and PostgreSQL stores, so the two
choose alike and as `core.top_costs` does; a store without SQL (Airtable) is served by
the service from its costs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from ..core import largest_first
from ..model import AttributeCost, FieldTokens

_COLS = "id, client_id, name, active, instructions, examples, signals"


def statement(encoding: str, n: int, client_ids: Collection[str] | None, placeholder: str,
              one_of: str, as_parameter: Callable[[list[str]], object]
              ) -> tuple[str, list[object]]:
    """(the query, its parameters) in the driver's style: `placeholder` its parameter
    mark, `one_of` its test that a client id is in a set passed as one parameter (so
    thousands of ids make neither a long statement nor thousands of parameters),
    `as_parameter` how it takes that set. The cut is the n-th largest counted total
    (ties at it kept; with fewer than n, 0, so all of them), for n of 1 or more; one row
    whose counts are missing, if any, tells `from_rows` that the answer would be wrong."""
    among = ""
    params: list[object] = [encoding]
    if client_ids is not None:
        among = f" AND a.client_id {one_of}"
        params.append(as_parameter(sorted(client_ids)))
    sql = ("WITH chosen AS (SELECT a.id, a.client_id, a.name, a.active, t.instructions, "
           "t.examples, t.signals, t.instructions + t.examples + t.signals AS total "
           "FROM attributes a LEFT JOIN token_counts t "
           f"ON t.attribute_id = a.id AND t.encoding = {placeholder} WHERE a.active{among}) "
           f"SELECT {_COLS} FROM chosen WHERE total >= COALESCE((SELECT total FROM chosen "
           f"WHERE total IS NOT NULL ORDER BY total DESC LIMIT 1 OFFSET {placeholder}), 0) "
           f"UNION ALL SELECT * FROM (SELECT {_COLS} FROM chosen WHERE total IS NULL "
           "LIMIT 1) AS uncounted")
    return sql, [*params, n - 1]


def from_rows(rows: Iterable[tuple]) -> list[AttributeCost] | None:
    """The candidates, largest first; None while some active attribute of the chosen
    clients has no count for the encoding yet: its total is unknown, so any of the cut
    may be wrong, and the service counts it first (and stores the count)."""
    out = []
    for aid, cid, name, active, i, e, s in rows:
        if i is None:
            return None
        out.append(AttributeCost(aid, cid, name, bool(active), FieldTokens(i, e, s)))
    return sorted(out, key=largest_first)
