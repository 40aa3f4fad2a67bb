"""The `tokenbudget` command: a thin door onto the service (see README for the contract)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from . import core, demo
from .model import FIELDS, Actor, BadInput, Change, NotAllowed, StaleWrite
from .redact import scrub
from .service import BudgetService
from .settings import AirtableSettings, Settings
from .stores import StoreError, open_store
from .stores.copy import copy_store
from .tokens import ENCODINGS, UnknownEncoding, chars4, counter
from .views import usage_row

CLI_ACTOR = Actor("cli", "admin")  # the shell user owns the store file
RUN_DUE_ACTOR = Actor("run-due", "admin")  # what the audit log says of the scheduled pass
DEMO_LIMITS = {"clients": 100_000, "attributes_per_client": 1_000}  # a data set that fits


class UsageError(Exception):
    """The arguments do not fit the command line's grammar (argparse's complaint)."""


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is one line like every other error, not the
    usage text followed by the error (subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tokenbudget", description=__doc__)
    p.add_argument("--store", help="sqlite:///PATH, airtable or postgresql://USER:PASSWORD@HOST"
                                   ":PORT/DB (default: env TOKENBUDGET_STORE or "
                                   "sqlite:///data/tokenbudget.db)")
    p.add_argument("--strict", action="store_true",
                   help="exit 2, doing nothing, when the store skips a record it cannot read "
                        "(by default each skipped record is named on stderr)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo-data", help="fill the store with the demo data set")
    d.add_argument("--clients", type=int, default=40)
    d.add_argument("--attributes-per-client", type=int, default=None)
    d.add_argument("--seed", type=int, default=7)

    u = sub.add_parser("usage", help="usage against budget per client")
    u.add_argument("--client")
    u.add_argument("--json", action="store_true")

    a = sub.add_parser("attributes", help="a client's attributes and their tokens")
    a.add_argument("client_id")
    a.add_argument("--json", action="store_true")

    for name, text in (("validate", "check a change against the budget; writes nothing"),
                       ("apply", "check a change and save it if allowed")):
        v = sub.add_parser(name, help=text)
        v.add_argument("client_id")
        v.add_argument("attribute_id")
        g = v.add_mutually_exclusive_group()
        g.add_argument("--activate", action="store_true")
        g.add_argument("--deactivate", action="store_true")
        v.add_argument("--set", action="append", default=[], metavar="FIELD=TEXT")
        v.add_argument("--json", action="store_true")

    r = sub.add_parser("reset", help="recompute usage and start the next period")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("client_id", nargs="?")
    g.add_argument("--all", action="store_true")

    t = sub.add_parser("set-tier", help="change a client's service level")
    t.add_argument("client_id")
    t.add_argument("level")

    b = sub.add_parser("set-budget", help="set or clear a client's budget override")
    b.add_argument("client_id")
    g = b.add_mutually_exclusive_group(required=True)
    g.add_argument("tokens", nargs="?")
    g.add_argument("--clear", action="store_true")

    tr = sub.add_parser("tiers", help="show or set tier limits")
    tr.add_argument("--set", action="append", default=[], metavar="LEVEL=TOKENS")
    tr.add_argument("--json", action="store_true")

    au = sub.add_parser("audit", help="the audit log")
    au.add_argument("--client")
    au.add_argument("--json", action="store_true")

    cs = sub.add_parser("copy-store", help="copy everything into another, empty store "
                                           "and verify the copy")
    cs.add_argument("--to", required=True, metavar="URL", help="the destination store")

    c = sub.add_parser("count", help="count tokens of files or stdin")
    c.add_argument("--encoding", choices=ENCODINGS)
    c.add_argument("--json", action="store_true")
    c.add_argument("paths", nargs="+", metavar="FILE")

    rd = sub.add_parser("run-due", help="the scheduled pass: due resets, email alerts, "
                                        "automatic deactivation (for cron or a systemd timer)")
    rd.add_argument("--dry-run", action="store_true", help="print what it would do; write nothing")
    rd.add_argument("--now", metavar="ISO_TIME",
                    help="act as of this time, e.g. 2026-12-01T06:00 (UTC unless an offset is "
                         "given; default: now)")
    for name, text in (("notifications", "email alerts sent and failed"),
                       ("deactivations", "attributes switched off by automatic deactivation")):
        sub.add_parser(name, help=text).add_argument("--json", action="store_true")
    rs = sub.add_parser("restore", help="switch back on what a deactivation run switched off")
    rs.add_argument("run_id")
    ad = sub.add_parser("auto-deactivate", help="the automatic-deactivation policy, for "
                                                "everyone or one client")
    ad.add_argument("state", choices=["on", "off", "default"],
                    help="default: the client follows the setting for everyone")
    ad.add_argument("--client", help="one client instead of everyone")
    ad.add_argument("--order", choices=["newest", "largest"])

    at = sub.add_parser("airtable", help="check or prepare your Airtable base")
    at.add_argument("action", choices=["check", "migrate"],
                    help="check: report tables and fields; migrate: add the token fields")
    return p


def _change(args: argparse.Namespace) -> Change:
    fields: dict[str, str] = {}
    for item in args.set:
        name, sep, text = item.partition("=")
        if not sep:
            raise BadInput(f"attribute {args.attribute_id}", item, "expected FIELD=TEXT")
        if name not in FIELDS:
            raise BadInput(f"attribute {args.attribute_id}", name,
                           f"unknown field; use one of {', '.join(FIELDS)}")
        fields[name] = text
    active = {args.attribute_id: True} if args.activate else (
        {args.attribute_id: False} if args.deactivate else {})
    if not fields and not active:
        raise BadInput(f"attribute {args.attribute_id}", "change",
                       "give --activate, --deactivate or --set FIELD=TEXT")
    return Change(args.client_id, {args.attribute_id: fields} if fields else {}, active)


def _tier_limits(items: Sequence[str]) -> list[tuple[int, int]]:
    """`LEVEL=TOKENS` arguments as (level, tokens), every one checked."""
    out = []
    for item in items:
        level, sep, tokens = item.partition("=")
        if not sep:
            raise BadInput(f"tier {item}", "--set", "expected LEVEL=TOKENS")
        lvl = core.whole_number(f"tier {level}", "level", level, low=1)
        out.append((lvl, core.whole_number(f"tier {lvl}", "Token Budget", tokens)))
    return out


def _emit(data: object, as_json: bool, lines: Sequence[str]) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print("\n".join(lines))


def _run(args: argparse.Namespace) -> int:
    if args.command == "count":
        return _count(args)
    settings = Settings.load(store=args.store)
    if args.command == "airtable":  # works on the base's schema, whatever the store setting
        return _airtable(args, settings.airtable, settings.lock_timeout)
    service = BudgetService.from_settings(settings)
    if args.strict:
        service.usage_report()  # loads every record, so that the skipped ones are known
        if service.store_warnings:
            raise SkippedRecords(service.store_warnings)
    code = _command(args, settings, service)
    for warning in service.store_warnings:
        print(f"tokenbudget: skipped: {_one_line(warning)}", file=sys.stderr)
    return code


def _command(args: argparse.Namespace, settings: Settings, service: BudgetService) -> int:
    if args.command == "demo-data":
        for name, high in DEMO_LIMITS.items():
            value = getattr(args, name)
            if value is not None and not 1 <= value <= high:
                raise BadInput("demo-data", f"--{name.replace('_', '-')}",
                               f"must be from 1 to {high:,}, got {value}")
        data = demo.generate(service.counter.count_many, args.clients,
                             args.attributes_per_client, args.seed)
        n = service.load_data_set(CLI_ACTOR, *data)
        print(f"loaded {len(data[1])} clients and {n} attributes into {service.store_label}")
        return 0

    if args.command == "usage":
        report = ([service.client_usage(args.client)] if args.client
                  else service.usage_report())
        _emit([usage_row(u) for u in report], args.json,
              [f"{u.client.id}  {u.client.name}: {core.format_usage(u.usage, u.budget)} "
               f"[{u.status}]" for u in report])
        return 0

    if args.command == "attributes":
        attrs = {a.id: a for a in service.attributes(args.client_id)}
        costs = service.costs(args.client_id)
        rows = [{"attribute_id": c.id, "name": c.name, "active": c.active,
                 "instructions_tokens": c.tokens.instructions,
                 "examples_tokens": c.tokens.examples, "signals_tokens": c.tokens.signals,
                 "tokens": c.total} for c in costs if c.id in attrs]
        _emit(rows, args.json,
              [f"{r['attribute_id']}  {'on ' if r['active'] else 'off'}  {r['tokens']:>7,}  "
               f"{r['name']}" for r in rows])
        return 0

    if args.command in ("validate", "apply"):
        change = _change(args)
        result = (service.validate(change) if args.command == "validate"
                  else service.apply(CLI_ACTOR, change))
        verdict = "allowed" if result.allowed else "refused"
        if args.command == "apply":
            verdict = "saved" if result.allowed else "refused, nothing saved"
        _emit(result.as_dict(), args.json,
              [f"{verdict}: {result.current:,} -> {result.projected:,} tokens "
               f"(delta {result.delta:+,}) of {result.budget:,}"
               + (f", over by {result.over_by:,}" if result.over_by else "")])
        return 0 if result.allowed else 1

    if args.command == "reset":
        results = (service.reset_all(CLI_ACTOR) if args.all
                   else [service.reset(CLI_ACTOR, args.client_id)])
        print("\n".join(r.message for r in results))
        return 0

    if args.command == "set-tier":
        level = core.whole_number(f"client {args.client_id}", "Service Level", args.level, low=1)
        c = service.set_service_level(CLI_ACTOR, args.client_id, level)
        print(f"{c.name}: service level {c.service_level}")
        return 0

    if args.command == "set-budget":
        tokens = None if args.clear else core.whole_number(
            f"client {args.client_id}", "Token Budget", args.tokens)
        c = service.set_budget_override(CLI_ACTOR, args.client_id, tokens)
        print(f"{c.name}: token budget "
              + ("from its tier" if c.token_budget is None else f"{c.token_budget:,}"))
        return 0

    if args.command == "tiers":
        for level, tokens in _tier_limits(args.set):
            service.set_tier_limit(CLI_ACTOR, level, tokens)
        tiers = service.tiers()
        _emit([{"level": t.level, "name": t.name, "tokens": t.tokens} for t in tiers.values()],
              args.json, [f"{t.level}  {t.name:<14} {t.tokens:>8,}" for t in tiers.values()])
        return 0

    if args.command == "run-due":
        return _run_due(service, args)

    if args.command == "copy-store":
        target = open_store(args.to, settings.airtable, settings.lock_timeout)
        copied = copy_store(service.store, target, service.encoding)
        print("\n".join(copied.lines()))
        return 0 if copied.equal else 2

    if args.command == "notifications":
        sent = [replace(n, error=service.redacted(n.error)) for n in service.notifications()]
        _emit([{**asdict(n), "recipients": list(n.recipients)} for n in sent], args.json,
              [f"{n.at:%Y-%m-%d %H:%M}  {n.status:<6}  {n.client_id}  {n.threshold}%  "
               f"period {n.period}  to {', '.join(n.recipients) or '-'}  "
               f"(attempts {n.attempts}){'  ' + n.error if n.error else ''}" for n in sent])
        return 0

    if args.command == "deactivations":
        runs = service.deactivation_runs()
        _emit([asdict(d) for d in runs], args.json,
              [f"{d.run_id}  {d.client_id}  {d.attribute_id}  {d.tokens:>7,}  "
               f"{'restored' if d.restored_at else 'off     '}  {d.reason}" for d in runs])
        return 0

    if args.command == "restore":
        back = service.restore_run(CLI_ACTOR, args.run_id)
        print(f"restored {len(back)} attribute(s) of run {args.run_id}: "
              + (", ".join(f"{d.client_id}/{d.attribute_id}" for d in back) or "none was off"))
        return 0

    if args.command == "auto-deactivate":
        if args.state == "default" and args.client is None:
            raise BadInput("auto-deactivate", "state",
                           "default applies to one client (--client ID)")
        enabled = {"on": True, "off": False, "default": None}[args.state]
        after = service.set_auto_deactivate(CLI_ACTOR, args.client, enabled, args.order)
        print(f"automatic deactivation for {args.client or 'everyone'}: {after}")
        return 0

    if args.command == "audit":
        if args.client:
            service.client(args.client)
        entries = service.audit(args.client)
        _emit([{"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                "client_id": e.client_id, "before": e.before, "after": e.after}
               for e in entries], args.json,
              [f"{e.at.isoformat()}  {e.actor}  {e.action}  {e.client_id or '-'}  "
               f"{json.dumps(e.before, default=str)} -> {json.dumps(e.after, default=str)}"
               for e in entries])
        return 0
    raise AssertionError(args.command)  # argparse only lets known commands through


def _run_due(service: BudgetService, args: argparse.Namespace) -> int:
    """Exit 0, or 1 when an email could not be sent (it is retried on the next pass),
    so that cron's mail or systemd's failed state tells someone. A pass that found
    another one running did nothing and says so: exit 0, nothing went wrong."""
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise BadInput("run-due", "--now", f"not an ISO time: {args.now!r}") from None
        now = core.as_utc(now)
        service.clock = lambda: now
    if args.dry_run:
        plan = service.plan_due()
        print(f"dry run at {plan.now:%Y-%m-%d %H:%M %Z}; nothing written")
        print("\n".join(plan.lines()))
        return 0
    report = service.run_due(RUN_DUE_ACTOR)
    print("\n".join(service.redacted(line) for line in report.lines))
    return 1 if report.failed else 0


def _airtable(args: argparse.Namespace, section: AirtableSettings, lock_timeout: float) -> int:
    """Exit 0 when the base has every table and field the settings name, else 1."""
    from .stores.airtable import (AirtableConfig, AirtableFailure,  # pyairtable only when used
                                  AirtableStore, check, migrate)
    store = AirtableStore(AirtableConfig.from_settings(section, lock_timeout))
    try:
        report = check(store) if args.action == "check" else migrate(store)
    except AirtableFailure as e:  # pragma: no cover - the store converts these
        raise StoreError(str(e)) from None
    print("\n".join(report.lines()))
    if args.action == "migrate" and not report.created:
        print("nothing to change")
    return 0 if report.ok else 1


def _count(args: argparse.Namespace) -> int:
    tok = counter(args.encoding or Settings.load().encoding)
    rows = []
    for path in args.paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or e
            raise BadInput(path, "file", f"cannot read: {reason}") from None
        rows.append({"path": path, "tokens": tok.count(text), "chars4": chars4(text)})
    _emit(rows, args.json, [f"{r['tokens']} {r['path']}" for r in rows])
    return 0


class SkippedRecords(Exception):
    """--strict: the store skipped records it could not read."""

    def __init__(self, warnings: Sequence[str]) -> None:
        super().__init__(f"{len(warnings)} record(s) skipped, nothing done (--strict): "
                         + "; ".join(warnings))


def _one_line(text: object) -> str:
    """The contract promises one stderr line; a value quoted in a message may hold a
    line break."""
    return " ".join(str(text).splitlines())


def _not_utf8(argv: Sequence[str]) -> int | None:
    """The position of the first argument that is not UTF-8 text (Python hands such
    bytes over as lone surrogates, which no store, tokenizer or terminal accepts)."""
    for n, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return n
    return None


def _silence_stdout() -> None:
    """The reader of our output went away (`tokenbudget usage | head -1`): point stdout
    at devnull, as Python's documentation of SIGPIPE advises, so that the flush at exit
    does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (tests capture it)
        pass


def _main(argv: Sequence[str]) -> int:
    bad = _not_utf8(argv)
    if bad is not None:
        print(f"tokenbudget: error: argument {bad} is not valid UTF-8 text", file=sys.stderr)
        return 2
    try:
        args = _parser().parse_args(argv)
    except UsageError as e:
        print(f"tokenbudget: error: {_one_line(e)}", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except (BadInput, UnknownEncoding, StoreError, NotAllowed, StaleWrite,
            SkippedRecords) as e:
        print(f"tokenbudget: {_one_line(scrub(str(e), *_secrets(args)))}", file=sys.stderr)
        return 2


def _secrets(args: argparse.Namespace) -> list[str]:
    """Every secret the settings hold, to hide in an error line whatever part of it a
    server or a library quoted; none when the settings are what failed to load (their
    messages never quote a secret)."""
    try:
        return Settings.load(store=args.store).secret_values()
    except BadInput:
        return []


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 done or allowed, 1 refused by the budget, 2 bad input or a store that
    cannot serve (one line on stderr)."""
    code = 0  # a closed pipe mid-output: the command ran, its reader left
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code


if __name__ == "__main__":
    sys.exit(main())
