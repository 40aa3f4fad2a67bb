"""The PostgreSQL schema as numbered migrations, applied in order when a store opens.

`schema_version` records every migration applied, so each runs exactly once per
database, and a database that a newer release already migrated is refused instead of
being written with assumptions it no longer meets. Every migration runs in one
transaction under an advisory lock, so hosts starting together cannot apply one twice.

Columns use PostgreSQL's own types (dates, time stamps with zone, booleans, jsonb); ids and
names sort byte-wise (`COLLATE "C"`), as in the SQLite store, whatever the server's locale.
Every table that pages show bumps the `data_version` sequence on each write statement:
a cheap "has anything changed" token that never makes two writers wait for each other."""

from __future__ import annotations

import psycopg

from ..base import StoreError
from . import locks

# the tables an Airtable sidecar in PostgreSQL holds too (`airtable/sidecar_postgresql`)
SHARED_TABLES = """
CREATE TABLE tiers (
    level bigint PRIMARY KEY CHECK (level >= 1),
    name text NOT NULL,
    tokens bigint NOT NULL CHECK (tokens >= 0)
);
CREATE TABLE usage_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id text COLLATE "C" NOT NULL,
    at timestamptz NOT NULL,
    usage bigint NOT NULL,
    budget bigint NOT NULL
);
CREATE INDEX usage_history_client ON usage_history (client_id, at);
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    client_id text COLLATE "C",
    before jsonb NOT NULL,
    after jsonb NOT NULL
);
CREATE INDEX audit_log_client ON audit_log (client_id, id);
CREATE TABLE settings (
    key text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE alerts_sent (
    client_id text COLLATE "C" NOT NULL,
    threshold bigint NOT NULL,
    period date NOT NULL,
    sent_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, threshold, period)
);
CREATE TABLE notifications (
    client_id text COLLATE "C" NOT NULL,
    threshold bigint NOT NULL,
    period date NOT NULL,
    status text NOT NULL CHECK (status IN ('sent', 'failed')),
    at timestamptz NOT NULL,
    recipients jsonb NOT NULL,
    subject text NOT NULL,
    error text NOT NULL DEFAULT '',
    attempts bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (client_id, threshold, period)
);
CREATE TABLE auto_deactivate_policy (
    client_id text COLLATE "C" PRIMARY KEY,
    enabled boolean NOT NULL
);
CREATE TABLE deactivations (
    position bigint GENERATED ALWAYS AS IDENTITY,
    run_id text COLLATE "C" NOT NULL,
    at timestamptz NOT NULL,
    client_id text COLLATE "C" NOT NULL,
    attribute_id text COLLATE "C" NOT NULL,
    name text NOT NULL,
    tokens bigint NOT NULL,
    reason text NOT NULL,
    restored_at timestamptz,
    PRIMARY KEY (run_id, attribute_id)
);
"""

_CLIENT_TABLES = """
CREATE TABLE clients (
    id text COLLATE "C" PRIMARY KEY,
    name text COLLATE "C" NOT NULL,
    service_level bigint NOT NULL,
    token_budget bigint CHECK (token_budget IS NULL OR token_budget >= 0),
    token_usage bigint NOT NULL DEFAULT 0,
    budget_reset_date date,
    last_token_update timestamptz,
    email text NOT NULL DEFAULT '',
    account_manager text NOT NULL DEFAULT '',
    topup bigint NOT NULL DEFAULT 0 CHECK (topup >= 0),
    period_months bigint NOT NULL DEFAULT 1 CHECK (period_months >= 1),
    last_reset_period date,
    version bigint NOT NULL DEFAULT 0
);
CREATE TABLE attributes (
    id text COLLATE "C" PRIMARY KEY,
    client_id text COLLATE "C" NOT NULL REFERENCES clients(id),
    name text COLLATE "C" NOT NULL,
    active boolean NOT NULL,
    instructions text NOT NULL DEFAULT '',
    examples text NOT NULL DEFAULT '',
    signals text NOT NULL DEFAULT '',
    version bigint NOT NULL DEFAULT 0
);
CREATE INDEX attributes_costs ON attributes (client_id, id) INCLUDE (name, active);
CREATE TABLE token_counts (
    attribute_id text COLLATE "C" NOT NULL REFERENCES attributes(id) ON DELETE CASCADE,
    encoding text NOT NULL,
    instructions bigint NOT NULL,
    examples bigint NOT NULL,
    signals bigint NOT NULL,
    PRIMARY KEY (attribute_id, encoding)
);
"""

_DATA_VERSION = """
CREATE SEQUENCE data_version;
CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('data_version');
    RETURN NULL;
END $$;
"""

# the tables whose writes change what a page shows (the count cache does not)
VERSIONED = ("tiers", "clients", "attributes", "usage_history", "audit_log", "settings",
             "alerts_sent", "notifications", "auto_deactivate_policy", "deactivations")

_TRIGGERS = "".join(
    f"CREATE TRIGGER {t}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {t} "
    "FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();\n" for t in VERSIONED)

# the alerts being sent right now (claimed before the email goes out, until the outcome
# is recorded), and who holds the scheduled pass's advisory lock (for the message a
# second pass gives; the advisory lock alone decides)
CLAIMS = """
CREATE TABLE alert_claims (
    client_id text COLLATE "C" NOT NULL,
    threshold bigint NOT NULL,
    period date NOT NULL,
    holder text NOT NULL,
    claimed_at timestamptz NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (client_id, threshold, period)
);
CREATE TABLE locks (
    name text PRIMARY KEY,
    holder text NOT NULL,
    host text NOT NULL,
    pid bigint NOT NULL,
    since timestamptz NOT NULL
);
"""

# version -> the statements that bring a database from the version before to it
MIGRATIONS: dict[int, str] = {
    1: _CLIENT_TABLES + SHARED_TABLES + _DATA_VERSION + _TRIGGERS,
    2: CLAIMS,
    # the day periods turn on, kept per client (a clamped reset date cannot tell it)
    3: "ALTER TABLE clients ADD COLUMN anchor_day bigint "
       "CHECK (anchor_day IS NULL OR anchor_day BETWEEN 1 AND 31);",
}
LATEST = max(MIGRATIONS)


def applied(conn: psycopg.Connection) -> int:
    """The newest migration recorded in the database, 0 for an empty one."""
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _recorded(conn: psycopg.Connection) -> int | None:
    """The schema version, or None before the first migration."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    return applied(conn) if row and row[0] else None


def migrate(conn: psycopg.Connection, label: str,
            migrations: dict[int, str] | None = None) -> int:
    """Applies the migrations the database has not seen yet, each recorded with the time
    it ran; returns the schema version the database is at. `conn` is in autocommit mode."""
    migrations = MIGRATIONS if migrations is None else migrations
    latest = max(migrations)
    if _recorded(conn) == latest:  # the usual case: no lock, so opening never waits
        return latest
    with conn.transaction():
        locks.store(conn)  # hosts starting together: one migrates, the others wait
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                     "version bigint PRIMARY KEY, applied_at timestamptz NOT NULL "
                     "DEFAULT now())")
        current = applied(conn)
        if current > latest:
            raise StoreError(f"{label} has schema version {current}, newer than version "
                             f"{latest} that this release of tokenbudget knows; upgrade it")
        for version in sorted(v for v in migrations if v > current):
            conn.execute(migrations[version])
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    return max(current, latest)
