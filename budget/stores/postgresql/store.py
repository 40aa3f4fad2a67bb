"""The shared store: one PostgreSQL database that several hosts use at once, with the
rows and meaning of the SQLite store (`stores/sqlite.py`).

Every write is one transaction unless it runs inside `transaction()`, whose locks
(`locks.py`) let changes to different clients proceed side by side while a check and its
write on one client never interleave with another host's."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime

from ...model import (Attribute, AttributeCost, AuditEntry, BadInput, Client, Deactivation,
                      FieldTokens, Notification, StaleWrite, Tier)
from . import automation, shared_tables
from .. import top_costs, usage_totals
from ..base import PassHolder
from .connection import Database
from .migrations import migrate

_CLIENT_COLS = ("id, name, service_level, token_budget, token_usage, budget_reset_date, "
                "last_token_update, email, account_manager, topup, period_months, "
                "last_reset_period, anchor_day, version")
_ATTRIBUTE_COLS = "id, client_id, name, active, instructions, examples, signals, version"


def _storable(record: str, values: dict[str, str]) -> None:
    """PostgreSQL text cannot hold the NUL character; say which field has one."""
    for name, value in values.items():
        if "\x00" in value:
            raise BadInput(record, name, "contains a NUL character (\\x00), which "
                                         "PostgreSQL cannot store; remove it")


def _check_attribute(a: Attribute) -> None:
    _storable(f"attribute {a.id}", {"Name": a.name, "Instructions": a.instructions,
                                    "Examples": a.examples, "Signals": a.signals})


def _check_client(c: Client) -> None:
    _storable(f"client {c.id}", {"Name": c.name, "Email": c.email,
                                 "Account Manager": c.account_manager})


def _client_row(c: Client) -> tuple:
    return (c.id, c.name, c.service_level, c.token_budget, c.token_usage, c.budget_reset_date,
            c.last_token_update, c.email, c.account_manager, c.topup, c.period_months,
            c.last_reset_period, c.anchor_day, c.version)


class PostgresStore(shared_tables.SharedReads):
    """Thread-safe: a pool of connections, one held by each thread inside a transaction.
    `close()` returns them to the server."""

    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout: float = 10.0,
                 lock_timeout: float = 10.0, statement_timeout: float = 60.0) -> None:
        self._db = Database(url, pool_size=pool_size, connect_timeout=connect_timeout,
                            lock_timeout=lock_timeout, statement_timeout=statement_timeout)
        self.label = f"PostgreSQL: {self._db.label}"
        self.warnings: list[str] = []
        with self._db.direct() as conn:
            self.schema_version = migrate(conn, self._db.label)
        self._db.open()

    def close(self) -> None:
        self._db.close()

    def transaction(self, client_id: str | None = None) -> AbstractContextManager[None]:
        """With a client id: that client's row is locked until commit, so its validated
        changes serialise across hosts and other clients' do not wait. Without: the whole
        store is locked (waits for every client's transaction in progress)."""
        return self._db.transaction(client_id)

    def pass_lock(self) -> AbstractContextManager[bool]:
        """Whether this process got the scheduled pass's lock (held while the `with`
        body runs); another host's pass holding it makes this one skip, not wait."""
        return self._db.pass_lock()

    def pass_holder(self) -> PassHolder | None:
        return self._db.pass_holder()

    def data_version(self) -> str:
        """Moves with every committed write to what pages show, from any host."""
        (value, called), = self._db.query("SELECT last_value, is_called FROM data_version")
        return str(value if called else 0)

    # reads -----------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]:
        return shared_tables.tiers(self._db)

    def clients(self) -> list[Client]:
        return [Client(*r) for r in
                self._db.query(f"SELECT {_CLIENT_COLS} FROM clients ORDER BY name, id")]

    def client_names(self) -> list[tuple[str, str]]:
        return [(cid, name) for cid, name in
                self._db.query("SELECT id, name FROM clients ORDER BY name, id")]

    def client(self, client_id: str) -> Client | None:
        rows = self._db.query(f"SELECT {_CLIENT_COLS} FROM clients WHERE id = %s",
                              (client_id,))
        return Client(*rows[0]) if rows else None

    def attributes(self, client_id: str | None = None,
                   ids: Sequence[str] | None = None) -> list[Attribute]:
        where: list[str] = []
        params: list[object] = []
        if client_id is not None:
            where.append("client_id = %s")
            params.append(client_id)
        if ids is not None:
            where.append("id = ANY(%s)")
            params.append(list(ids))
        sql = f"SELECT {_ATTRIBUTE_COLS} FROM attributes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [Attribute(*r) for r in
                self._db.query(sql + " ORDER BY client_id, name, id", params)]

    def costs(self, encoding: str, client_id: str | None = None
              ) -> tuple[list[AttributeCost], list[Attribute]]:
        sql = ("SELECT a.id, a.client_id, a.name, a.active, t.instructions, t.examples, "
               "t.signals FROM attributes a LEFT JOIN token_counts t "
               "ON t.attribute_id = a.id AND t.encoding = %s")
        params: list = [encoding]
        if client_id is not None:
            sql += " WHERE a.client_id = %s"
            params.append(client_id)
        counted, missing = [], []
        for aid, cid, name, active, i, e, s in self._db.query(
                sql + " ORDER BY a.client_id, a.id", params):
            if i is None:
                missing.append(aid)
            else:
                counted.append(AttributeCost(aid, cid, name, active, FieldTokens(i, e, s)))
        return counted, self.attributes(ids=missing) if missing else []

    def usage_totals(self, encoding: str) -> usage_totals.Totals | None:
        return usage_totals.from_rows(self._db.query(usage_totals.query("%s"), (encoding,)))

    def top_costs(self, encoding: str, n: int, client_ids: Collection[str] | None = None
                  ) -> list[AttributeCost] | None:
        """See stores/top_costs.py; the client ids travel as one text array."""
        return top_costs.from_rows(self._db.query(*top_costs.statement(
            encoding, n, client_ids, "%s", "= ANY(%s)", list)))

    # writes: each is its own transaction unless already inside one ---------
    def save_setting(self, key: str, value: str) -> None:
        with self.transaction():
            shared_tables.save_setting(self._db, key, value)

    def save_counts(self, encoding: str, counts: dict[str, FieldTokens]) -> None:
        with self.transaction():
            self._db.execute_many(
                "INSERT INTO token_counts VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (attribute_id, encoding) DO UPDATE SET "
                "instructions = excluded.instructions, examples = excluded.examples, "
                "signals = excluded.signals",
                [(aid, encoding, t.instructions, t.examples, t.signals)
                 for aid, t in counts.items()])

    def save_attributes(self, attributes: Iterable[Attribute], encoding: str,
                        counts: dict[str, FieldTokens]) -> None:
        with self.transaction():
            for a in attributes:
                _check_attribute(a)
                changed = self._db.execute(
                    "UPDATE attributes SET name = %s, active = %s, instructions = %s, "
                    "examples = %s, signals = %s, version = version + 1 "
                    "WHERE id = %s AND version = %s",
                    (a.name, a.active, a.instructions, a.examples, a.signals, a.id, a.version))
                if changed != 1:
                    raise StaleWrite(f"attribute {a.id} changed since it was read; reload")
                if a.id in counts:  # text changed: counts of other encodings are stale
                    self._db.execute("DELETE FROM token_counts WHERE attribute_id = %s",
                                     (a.id,))
            self.save_counts(encoding, counts)

    def save_client(self, client: Client) -> Client:
        _check_client(client)
        with self.transaction():
            changed = self._db.execute(
                "UPDATE clients SET name = %s, service_level = %s, token_budget = %s, "
                "token_usage = %s, budget_reset_date = %s, last_token_update = %s, "
                "email = %s, account_manager = %s, topup = %s, period_months = %s, "
                "last_reset_period = %s, anchor_day = %s, version = version + 1 "
                "WHERE id = %s AND version = %s",
                (*_client_row(client)[1:-1], client.id, client.version))
            if changed != 1:
                raise StaleWrite(f"client {client.id} changed since it was read; reload")
            return self.client(client.id)  # type: ignore[return-value]

    def save_tier(self, tier: Tier) -> None:
        with self.transaction():
            shared_tables.save_tier(self._db, tier)

    def add_audit(self, entry: AuditEntry) -> None:
        with self.transaction():
            shared_tables.add_audit(self._db, entry)

    def add_history(self, client_id: str, at: datetime, usage: int, budget: int) -> None:
        with self.transaction():
            shared_tables.add_history(self._db, client_id, at, usage, budget)

    def clear_alerts(self, client_id: str, period: date) -> int:
        with self.transaction():
            return shared_tables.clear_alerts(self._db, client_id, period)

    def replace_all(self, tiers: Iterable[Tier], clients: Iterable[Client],
                    attributes: Iterable[Attribute]) -> None:
        clients, attributes = list(clients), list(attributes)
        for c in clients:
            _check_client(c)
        for a in attributes:
            _check_attribute(a)
        with self.transaction():
            for table in ("token_counts", "attributes", "usage_history", "audit_log",
                          "alerts_sent", *automation.TABLES, "clients", "tiers"):
                self._db.execute(f"DELETE FROM {table}")
            self._copy("tiers (level, name, tokens)",
                       ((t.level, t.name, t.tokens) for t in tiers))
            self._copy(f"clients ({_CLIENT_COLS})", map(_client_row, clients))
            self._copy(f"attributes ({_ATTRIBUTE_COLS})",
                       ((a.id, a.client_id, a.name, a.active, a.instructions, a.examples,
                         a.signals, a.version) for a in attributes))

    def _copy(self, target: str, rows: Iterable[tuple]) -> None:
        """Bulk rows with COPY: a data set of 100,000 attributes in one stream."""
        with self._db.connection() as conn, conn.cursor() as cur, \
                cur.copy(f"COPY {target} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    # automation: the tables are in automation.py ----------------------------
    def sent_alerts(self) -> set[tuple[str, int, date]]:
        return automation.sent_alerts(self._db)

    def claim_alert(self, client_id: str, thresholds: Sequence[int], period: date,
                    holder: str, lease: float) -> bool:
        """One transaction of its own that locks the client's row (so it waits for a
        reset of that client in progress), committed before the email goes out."""
        return automation.claim_alert(self._db, client_id, thresholds, period, holder, lease)

    def notifications(self, client_id: str | None = None) -> list[Notification]:
        return automation.notifications(self._db, client_id)

    def save_notification(self, notification: Notification) -> None:
        with self.transaction():
            automation.save_notification(self._db, notification)

    def auto_deactivate_flags(self) -> dict[str, bool]:
        return automation.auto_deactivate_flags(self._db)

    def save_auto_deactivate_flag(self, client_id: str, enabled: bool | None) -> None:
        with self.transaction():
            automation.save_auto_deactivate_flag(self._db, client_id, enabled)

    def deactivations(self, run_id: str | None = None) -> list[Deactivation]:
        return automation.deactivations(self._db, run_id)

    def add_deactivation(self, deactivation: Deactivation) -> None:
        with self.transaction():
            automation.add_deactivation(self._db, deactivation)

    def mark_restored(self, deactivations: Iterable[Deactivation], at: datetime) -> None:
        with self.transaction():
            automation.mark_restored(self._db, deactivations, at)

