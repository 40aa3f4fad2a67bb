"""A realistic, deterministic demo data set: the same seed gives the same bytes."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta

from .model import DEFAULT_TIERS, Attribute, Client, Tier

COMPANIES = ("Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli",
             "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Gekko", "Oscorp",
             "Pied Piper", "Aperture", "Massive Dynamic", "Blue Sun", "Monarch", "Dunder",
             "Sterling", "Prestige", "Bluth", "Krusty", "Nakatomi", "Virtucon", "Zorin",
             "Gringotts", "Ollivander")
SUFFIXES = ("Analytics", "Logistics", "Health", "Robotics", "Capital", "Foods", "Software",
            "Energy", "Media", "Labs", "Retail", "Insurance")
MANAGERS = ("Ana Souza", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eva Novak")
ATTRIBUTES = ("Company size", "Industry fit", "Funding stage", "Tech stack", "Hiring velocity",
              "Decision-maker title", "Website traffic", "Intent signals", "Geographic fit",
              "Revenue band", "Competitor usage", "Event attendance", "Content engagement",
              "Email engagement", "Job postings", "Budget cycle", "Compliance needs",
              "Cloud provider", "Growth rate", "Partner ecosystem", "Product usage",
              "Support tickets", "Pricing page visits", "Demo requests", "Social mentions",
              "Executive changes", "Office expansion", "Procurement process", "Renewal date",
              "Churn risk", "Net promoter score", "Integration depth")
INSTRUCTION_SENTENCES = (
    "Score the lead higher when the company matches the ideal customer profile.",
    "Give 10 points if the company has more than 200 employees and fewer than 5,000.",
    "Penalise leads from industries we do not serve, such as gambling or tobacco.",
    "Consider the seniority of the contact: VP and C-level titles weigh the most.",
    "If the website shows a pricing page visit in the last 14 days, add 15 points.",
    "Ignore personal email domains such as gmail.com or yahoo.com when judging fit.",
    "Treat a recent Series B or later funding round as a strong buying signal.",
    "Use the job postings for data engineers as evidence of an active analytics project.",
    "Do not reward the same signal twice when it appears in several sources.",
    "Weigh first-party intent data above third-party intent data.",
    "When revenue is unknown, estimate it from headcount using the industry median.",
    "Leads from existing customers' subsidiaries should be routed to account management.",
)
FOREIGN_SENTENCES = (
    "Bewerte Unternehmen mit mehr als 500 Mitarbeitenden höher, besonders im DACH-Raum.",
    "Si la empresa ha visitado la página de precios dos veces, suma veinte puntos.",
    "Les entreprises du secteur public nécessitent un processus d'achat plus long.",
    "従業員数が千人を超える企業は、エンタープライズ向けの評価を適用してください。",
    "如果潜在客户最近参加了我们的网络研讨会，请提高其评分。",
    "Se o cliente usa Salesforce, a integração aumenta a probabilidade de compra.",
)
EXAMPLES = (
    "Example: 'Acme Corp, 1,200 employees, SaaS, raised Series C' -> score 85.",
    "Example: 'Local bakery, 8 employees, no website traffic' -> score 5.",
    "Example: 'Regional bank, 3,400 employees, visited pricing twice' -> score 72.",
    "Example: 'Startup, 40 employees, hiring 6 data engineers' -> score 64.",
    "Example: 'Hospital network, procurement via tender only' -> score 30.",
    "Example: 'Retail chain, 900 stores, uses Snowflake and dbt' -> score 78.",
    "Example: 'University, grant-funded project, 18-month cycle' -> score 22.",
    "Example: 'Logistics firm, new CTO hired last month' -> score 69.",
)
SIGNALS = ("pricing page visit", "demo request", "webinar attendance", "G2 comparison",
           "job posting: data engineer", "funding announcement", "new CTO", "RFP published",
           "competitor contract ending", "trial signup", "case study download",
           "integration docs viewed", "security questionnaire", "budget approved")
TIER_WEIGHTS = (0.3, 0.35, 0.25, 0.1)
# share of clients in each band of usage / budget: comfortably ok, warning, over
BANDS = ((0.7, (0.25, 0.7)), (0.15, (0.82, 0.97)), (0.15, (1.03, 1.25)))

TokenCount = Callable[[Sequence[str]], list[int]]


def _pick_band(rng: random.Random) -> tuple[float, float]:
    r = rng.random()
    for share, band in BANDS:
        if r < share:
            return band
        r -= share
    return BANDS[-1][1]


def _text(rng: random.Random, pool: Sequence[str], n: int, foreign: bool) -> str:
    parts = [rng.choice(pool) for _ in range(n)]
    if foreign:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(FOREIGN_SENTENCES))
    return " ".join(parts)


def _attribute(rng: random.Random, aid: str, cid: str, name: str, size: float) -> Attribute:
    """`size` scales the text: 0.2 gives a line, 3 gives several paragraphs."""
    foreign = rng.random() < 0.12
    sentences = max(1, round(size * rng.uniform(2, 5)))
    instructions = _text(rng, INSTRUCTION_SENTENCES, sentences, foreign)
    examples = "" if rng.random() < 0.15 else "\n".join(
        rng.choice(EXAMPLES) for _ in range(max(1, round(size * rng.uniform(1, 4)))))
    signals = "" if rng.random() < 0.2 else ", ".join(
        rng.sample(SIGNALS, min(len(SIGNALS), max(1, round(size * rng.uniform(2, 6))))))
    return Attribute(aid, cid, name, rng.random() < 0.85, instructions, examples, signals)


def _fit(attrs: list[Attribute], target: int, count: TokenCount) -> list[Attribute]:
    """Grows the Examples of active attributes, a line at a time, until usage
    reaches the target."""
    if not any(a.active for a in attrs):
        attrs[0] = replace(attrs[0], active=True)
    active = [k for k, a in enumerate(attrs) if a.active]
    total = sum(count([t for k in active for t in
                       (attrs[k].instructions, attrs[k].examples, attrs[k].signals)]))
    i = 0
    while total < target:
        k = active[i % len(active)]
        old = attrs[k].examples
        new = (old + "\n" + EXAMPLES[i % len(EXAMPLES)]).strip()
        attrs[k] = replace(attrs[k], examples=new)
        before, after = count([old, new])
        total, i = total + after - before, i + 1
    return attrs


def generate(count: TokenCount, clients: int = 40, attributes_per_client: int | None = None,
             seed: int = 7, today: date | None = None,
             tiers: dict[int, tuple[str, int]] = DEFAULT_TIERS
             ) -> tuple[list[Tier], list[Client], list[Attribute]]:
    """`count` maps texts to token counts; it sizes the texts so that some clients
    end up near or over their budget."""
    rng = random.Random(seed)
    today = today or date.today()
    out_clients, out_attrs = [], []
    for n in range(1, clients + 1):
        cid = f"C{n:04d}"
        level = rng.choices(list(tiers), TIER_WEIGHTS[:len(tiers)])[0]
        limit = tiers[level][1]
        low, high = _pick_band(rng)
        target = int(limit * rng.uniform(low, high))
        n_attrs = attributes_per_client or rng.randint(5, 30)
        names = [ATTRIBUTES[(k + n) % len(ATTRIBUTES)] for k in range(n_attrs)]
        names = [nm if k < len(ATTRIBUTES) else f"{nm} {k // len(ATTRIBUTES) + 1}"
                 for k, nm in enumerate(names)]
        # sizes chosen so the estimated total lands under the target; _fit tops it up
        avg_tokens = target / max(1, n_attrs * 0.85)
        attrs = [_attribute(rng, f"{cid}-A{k + 1:03d}", cid, names[k],
                            max(0.2, avg_tokens / 160 * rng.uniform(0.2, 1.2)))
                 for k in range(n_attrs)]
        out_attrs += _fit(attrs, target, count)
        company = f"{COMPANIES[(n - 1) % len(COMPANIES)]} {SUFFIXES[(n * 7) % len(SUFFIXES)]}"
        if n > len(COMPANIES):
            company += f" {n // len(COMPANIES) + 1}"
        slug = company.lower().replace(" ", "")
        out_clients.append(Client(
            id=cid, name=company, service_level=level,
            budget_reset_date=today + timedelta(days=rng.randint(1, 28)),
            email=f"ops@{slug}.example", account_manager=rng.choice(MANAGERS),
            token_budget=limit + 1_000 if rng.random() < 0.05 else None))
    return [Tier(k, *v) for k, v in tiers.items()], out_clients, out_attrs
