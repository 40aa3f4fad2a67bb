"""Figures for analysts: where the tokens go, where they are heading, what they cost.

Pure functions over what the service returns (usage frames, costs, history, attributes):
pandas for grouping, no Streamlit, no I/O, so every figure can be checked by hand."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from difflib import SequenceMatcher

import numpy as np
import pandas as pd

from . import core
from .model import FIELDS, Attribute, AttributeCost

History = Sequence[tuple[str, datetime, int, int]]  # (client id, at, usage, budget)
FLAT = 1.0  # tokens per day: a slope smaller than this is no trend
NO_TREND = "no trend"
NOT_ENOUGH = "not enough history yet"
MIN_DAYS = 7.0  # the default span of history a trend needs (TOKENBUDGET_TREND_MIN_DAYS)
MIN_POINTS = 3  # and the snapshots: two points always fit a line exactly


# top attributes --------------------------------------------------------------------------
def top_attributes(costs: Sequence[AttributeCost], clients: pd.DataFrame, n: int = 20,
                   tiers: Sequence[str] = (), statuses: Sequence[str] = ()) -> pd.DataFrame:
    """The `n` active attributes with the most tokens across all clients, with their
    client's tier and status; `tiers`/`statuses` filter by the client's. `costs` need
    only hold the candidates (`BudgetService.top_costs`), not every attribute's."""
    info = clients.set_index("client_id")[["client", "tier", "status"]]
    if tiers:
        info = info[info["tier"].isin(tiers)]
    if statuses:
        info = info[info["status"].isin(statuses)]
    # only the n largest totals can make the list (ties at the cut kept, so the order by
    # label among them is exact): a frame of 20-odd rows, not of every attribute
    rows = [{"client_id": c.client_id, "attribute_id": c.id, "attribute": c.name,
             "instructions": c.tokens.instructions, "examples": c.tokens.examples,
             "signals": c.tokens.signals, "tokens": c.total}
            for c in core.top_costs(costs, n, set(info.index))]
    frame = pd.DataFrame(rows, columns=["client_id", "attribute_id", "attribute", "instructions",
                                        "examples", "signals", "tokens"])
    frame = frame.join(info, on="client_id")
    frame = frame.assign(label=frame["attribute"] + " · " + frame["client"])
    return frame.sort_values(["tokens", "label"], ascending=[False, True],
                             ignore_index=True).head(n)


# trends ----------------------------------------------------------------------------------
def slope_per_day(points: Sequence[tuple[datetime, int]]) -> float | None:
    """Least-squares slope of usage over time in tokens per day; None with fewer than
    two distinct times (a line needs two)."""
    if len({at for at, _ in points}) < 2:
        return None
    t0 = min(at for at, _ in points)
    xs = [(at - t0).total_seconds() / 86_400 for at, _ in points]
    ys = [float(u) for _, u in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            / sum((x - mx) ** 2 for x in xs))


def trend_per_day(points: Sequence[tuple[datetime, int]], min_days: float = MIN_DAYS
                  ) -> float | None:
    """The slope of `points` in tokens per day, only when they can carry one: at least
    `MIN_POINTS` snapshots spanning at least `min_days` days. Two edits minutes apart
    would otherwise extrapolate to tens of thousands of tokens a day."""
    if len(points) < MIN_POINTS:
        return None
    times = [at for at, _ in points]
    if (max(times) - min(times)).total_seconds() < min_days * 86_400:
        return None
    return slope_per_day(points)


def reaches_budget(usage: int, budget: int, slope: float | None, now: datetime
                   ) -> tuple[date | None, str]:
    """(the date usage reaches the budget at `slope`, a phrase saying so). Over budget
    already, flat, falling or without enough history there is no date."""
    if usage > budget:
        return None, "over budget now"
    if slope is None:
        return None, NOT_ENOUGH
    if abs(slope) < FLAT:
        return None, NO_TREND
    if slope < 0:
        return None, "falling"
    when = (now + timedelta(days=(budget - usage) / slope)).date()
    return when, f"reaches budget {when:%Y-%m-%d}"


def forecast(clients: pd.DataFrame, history: History, now: datetime,
             min_days: float = MIN_DAYS) -> pd.DataFrame:
    """Clients sorted by headroom (remaining tokens, least first) with the trend of their
    history snapshots (whole tokens per day) and the date each reaches its budget at it."""
    points: dict[str, list[tuple[datetime, int]]] = {}
    for cid, at, used, _ in history:
        points.setdefault(cid, []).append((at, used))
    rows = []
    for r in clients.itertuples(index=False):
        slope = trend_per_day(points.get(r.client_id, []), min_days)
        when, phrase = reaches_budget(int(r.usage), int(r.budget), slope, now)
        rows.append({"client_id": r.client_id, "client": r.client, "tier": r.tier,
                     "usage": int(r.usage), "budget": int(r.budget),
                     "headroom": int(r.remaining), "percent_used": r.percent_used,
                     "status": r.status, "snapshots": len(points.get(r.client_id, [])),
                     "tokens_per_day": None if slope is None else round(slope),
                     "reaches_budget": when, "trend": phrase})
    frame = pd.DataFrame(rows, columns=[
        "client_id", "client", "tier", "usage", "budget", "headroom", "percent_used", "status",
        "snapshots", "tokens_per_day", "reaches_budget", "trend"])
    frame["tokens_per_day"] = frame["tokens_per_day"].astype("Int64")
    return frame.sort_values(["headroom", "client"], ignore_index=True)


def since(history: History, start: datetime | None) -> list[tuple[str, datetime, int, int]]:
    """The snapshots taken at or after `start` (all of them without one)."""
    return [h for h in history if start is None or h[1] >= start]


def usage_over_time(history: History, names: Mapping[str, str], current: Mapping[str, int],
                    start: datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per client, overall) usage over time from the snapshots, from `start` on.

    Overall at each time is the sum over every client in `current` (client id -> usage
    now) of its usage then: its latest snapshot so far, before its first snapshot that
    first figure, and for a client with no snapshot at all its usage now. Summing only
    the clients that happen to have a snapshot would draw a climb that never happened.
    `clients` says how many had a snapshot so far."""
    per = pd.DataFrame([{"client_id": c, "client": names.get(c, c), "at": at, "usage": u,
                         "budget": b} for c, at, u, b in history if c in current],
                       columns=["client_id", "client", "at", "usage", "budget"])
    if per.empty:
        return per, pd.DataFrame(columns=["at", "usage", "clients"])
    per = per.sort_values(["at", "client_id"], ignore_index=True)
    wide = (per.drop_duplicates(["at", "client_id"], keep="last")
            .pivot(index="at", columns="client_id", values="usage"))
    seen = wide.notna().cumsum().gt(0).sum(axis=1)
    known = wide.ffill().bfill()
    without = [c for c in current if c not in known.columns]
    total = known.sum(axis=1) + sum(int(current[c]) for c in without)
    overall = pd.DataFrame({"at": wide.index, "usage": total.astype(int).to_numpy(),
                            "clients": seen.to_numpy()})
    if start is not None:
        before = overall[overall["at"] < start].tail(1).assign(at=start)
        overall = pd.concat([before, overall[overall["at"] >= start]], ignore_index=True)
        per = per[per["at"] >= start]
    return per.reset_index(drop=True), overall.reset_index(drop=True)


# distribution by tier --------------------------------------------------------------------
def tier_summary(clients: pd.DataFrame) -> pd.DataFrame:
    """Per tier: clients, tokens, average and median share of budget used (of the
    clients' whole percents, rounded down), and how many clients are in each status."""
    counts = pd.crosstab(clients["tier"], clients["status"]).reindex(
        columns=["ok", "warning", "exceeded"], fill_value=0)
    grouped = clients.groupby("tier").agg(
        service_level=("service_level", "first"), clients=("client_id", "count"),
        usage=("usage", "sum"), mean_percent_used=("percent_used", "mean"),
        median_percent_used=("percent_used", "median"))
    out = grouped.join(counts).fillna(0).reset_index()
    # whole percent rounded down, like every other percent used the app shows
    out[["mean_percent_used", "median_percent_used"]] = out[
        ["mean_percent_used", "median_percent_used"]].apply(np.floor).astype(int)
    return out.sort_values("service_level", ignore_index=True)


# chars4 against the real tokenizer -------------------------------------------------------
def estimate_error(real: Sequence[AttributeCost], estimate: Sequence[AttributeCost],
                   names: Mapping[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per attribute, per client) of the `chars4` estimate against the real counts.
    error = estimate − real: positive means the old system over-counted. Per client it
    is over the active attributes, i.e. the usage each would have been billed."""
    est = {c.id: c.total for c in estimate}
    attrs = pd.DataFrame([{"client_id": c.client_id, "client": names.get(c.client_id, c.client_id),
                           "attribute_id": c.id, "attribute": c.name, "active": c.active,
                           "tokens": c.total, "chars4": est.get(c.id, 0)} for c in real],
                         columns=["client_id", "client", "attribute_id", "attribute", "active",
                                  "tokens", "chars4"])
    attrs["error"] = attrs["chars4"] - attrs["tokens"]
    attrs["error_percent"] = _percent(attrs["error"], attrs["tokens"])
    active = attrs[attrs["active"]]
    per = active.groupby(["client_id", "client"], as_index=False)[
        ["tokens", "chars4", "error"]].sum()
    per["error_percent"] = _percent(per["error"], per["tokens"])
    per["direction"] = [("over-counted" if e > 0 else "under-counted" if e < 0 else "exact")
                        for e in per["error"]]
    return (attrs.sort_values("error", key=abs, ascending=False, ignore_index=True),
            per.sort_values("error", ignore_index=True))


def _percent(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (100.0 * part / whole.where(whole != 0)).round(1)


# prompt cost -----------------------------------------------------------------------------
def prompt_cost(clients: pd.DataFrame, leads_per_month: int, price_per_mtok: float,
                revenue_by_level: Mapping[int, float] | None = None) -> pd.DataFrame:
    """Monthly prompt cost per client: tokens per scored lead (the active attributes'
    usage) × leads per month × price per million tokens. Where the client's level has a
    revenue, the cost's share of it and the tokens per unit of revenue (ROI)."""
    revenue = revenue_by_level or {}
    out = clients[["client_id", "client", "tier", "service_level", "status", "usage"]].rename(
        columns={"usage": "tokens_per_lead"}).copy()
    out["leads_per_month"] = leads_per_month
    out["monthly_tokens"] = out["tokens_per_lead"] * leads_per_month
    out["monthly_cost"] = (out["monthly_tokens"] * price_per_mtok / 1_000_000).round(2)
    out["monthly_revenue"] = out["service_level"].map(lambda lvl: revenue.get(lvl))
    has = out["monthly_revenue"].notna() & (out["monthly_revenue"] > 0)
    out["cost_percent_of_revenue"] = (100.0 * out["monthly_cost"]
                                      / out["monthly_revenue"].where(has)).round(2)
    out["tokens_per_revenue_unit"] = (out["monthly_tokens"]
                                      / out["monthly_revenue"].where(has)).round(0)
    return out.sort_values(["monthly_cost", "client"], ascending=[False, True],
                           ignore_index=True)


# similar attributes across clients -------------------------------------------------------
NAME_NEAR = 0.85  # SequenceMatcher ratio from which two attribute names are one template


def name_key(name: str) -> str:
    """'Company Size 2 ' -> 'company size': case, spacing and a copy number ignored."""
    return " ".join(re.sub(r"\s+\d+\s*$", "", name.strip().lower()).split())


def _text_key(a: Attribute) -> str:
    return "\x1f".join(" ".join(a.text(f).lower().split()) for f in FIELDS)


@dataclass(frozen=True)
class Group:
    """Attributes in several clients that look like copies of one template."""

    label: str
    attribute_ids: tuple[str, ...]
    clients: int


def similar_groups(attrs: Sequence[Attribute], name_near: float = NAME_NEAR) -> list[Group]:
    """Attributes with the same or a similar name (after `name_key`), or the same text
    (ignoring case and spacing), grouped; only groups that span two or more clients,
    largest first."""
    parent = list(range(len(attrs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    first: dict[tuple[str, str], int] = {}
    for i, a in enumerate(attrs):
        for key in (("name", name_key(a.name)), ("text", _text_key(a))):
            if key == ("text", "\x1f\x1f"):
                continue  # empty attributes are not copies of anything
            union(i, first.setdefault(key, i))
    names = sorted({name_key(a.name) for a in attrs})
    for k, x in enumerate(names):
        for y in names[k + 1:]:
            if SequenceMatcher(None, x, y).ratio() >= name_near:
                union(first["name", x], first["name", y])
    members: dict[int, list[int]] = {}
    for i in range(len(attrs)):
        members.setdefault(find(i), []).append(i)
    groups = []
    for idx in members.values():
        clients = {attrs[i].client_id for i in idx}
        if len(clients) < 2:
            continue
        label = Counter(attrs[i].name for i in idx).most_common(1)[0][0]
        groups.append(Group(label, tuple(attrs[i].id for i in idx), len(clients)))
    return sorted(groups, key=lambda g: (-g.clients, g.label))


def template_text(attrs: Sequence[Attribute], field_name: str) -> str:
    """The most common text of a field among copies: the starting point of a batch edit."""
    texts = Counter(a.text(field_name) for a in attrs)
    return texts.most_common(1)[0][0] if texts else ""
