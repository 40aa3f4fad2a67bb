"""What can be set, in one typed schema with a section per part of the app.

Each field's alias is the name a person sets (`TOKENBUDGET_WARNING`, `SMTP_HOST`,
`AIRTABLE_API_KEY`), so messages name what to change. Secrets are `SecretStr`: their
repr is `**********`, and `Settings.secret_values()` lists them for scrubbing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr,
                      model_validator)

from ..model import ROLES
from ..redact import url_passwords
from ..tokens import DEFAULT_ENCODING, ENCODINGS
from .lists import pairs

DEFAULT_STORE = "sqlite:///data/tokenbudget.db"
DEFAULT_THRESHOLDS: tuple[int, ...] = (80, 90, 100)
DEFAULT_LOCK_TIMEOUT = 30.0  # seconds a writer waits for another's lock
DEFAULT_MAX_BODY_BYTES = 2**20  # 1 MiB


class _Section(BaseModel):
    """A frozen group of settings, built by field name in code and by alias from the
    environment or secrets.toml."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True,
                              validate_by_alias=True, str_strip_whitespace=True)


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _roles(value: object) -> dict[str, str]:
    """`a@x.com:admin,b@x.com:viewer` or a TOML table {email = role}: who may do what
    after signing in; an email not listed is a viewer."""
    out = {}
    for email, role in pairs(value, ":"):
        if not email or not role:
            raise ValueError(f"expected EMAIL:ROLE, got {email!r}")
        if role not in ROLES:
            raise ValueError(f"{email}: unknown role {role!r}; use one of {', '.join(ROLES)}")
        out[email.lower()] = role
    return out


def _api_tokens(value: object) -> dict[str, str]:
    """The HTTP API's bearer tokens: `TOKEN:ROLE,...` or a TOML table {TOKEN = role}.
    A bad entry is named by its position, never by its text: the text is a secret, and
    TOKEN and ROLE may have been swapped."""
    out = {}
    for n, (token, role) in enumerate(pairs(value, ":"), 1):
        if not token or not role:
            raise ValueError(f"entry {n}: expected TOKEN:ROLE")
        if role not in ROLES:
            raise ValueError(f"entry {n}: the role after the last ':' is not one of "
                             f"{', '.join(ROLES)}")
        out[token] = role
    return out


def _thresholds(value: object) -> tuple[int, ...]:
    """`80,90,100` or a TOML list: whole percentages above 0, sorted, unique."""
    raw = value if isinstance(value, list | tuple) else str(value).split(",")
    if not [item for item in raw if str(item).strip()]:
        raise ValueError("needs at least one value")
    out = set()
    for item in raw:
        text = str(item).strip().rstrip("%")
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"expected whole percentages like 80,90,100, got {item!r}")
        out.add(int(text))
    return tuple(sorted(out))


def _managers(value: object) -> dict[str, str]:
    """`Name=email,...` or a TOML table: addresses of account managers that a client
    record names rather than addresses."""
    out = {}
    for name, email in pairs(value, "="):
        if not name or "@" not in email:
            raise ValueError(f"expected NAME=EMAIL, got {name}={email}".rstrip("="))
        out[name.lower()] = email
    return out


def _revenue(value: object) -> dict[int, float]:
    """`1:99,2:299` or a TOML table {1 = 99}: monthly revenue per service level."""
    out = {}
    for level, amount in pairs(value, ":"):
        try:
            out[int(level)] = float(amount)
        except ValueError:
            raise ValueError(f"expected LEVEL:AMOUNT, got {level}:{amount}".rstrip(":")) from None
    return out


def _encoding(value: str) -> str:
    if value not in ENCODINGS:
        raise ValueError(f"unknown encoding {value!r}; choose one of {', '.join(ENCODINGS)}")
    return value


def _web_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


NonNegative = Annotated[float, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0)]


class AirtableSettings(_Section):
    """The production store: the base, its table and field names, and the pacing that
    keeps the app under Airtable's 5 requests per second. A field name set to "" means
    the role is not used (an id field: Airtable record ids are the ids)."""

    api_key: SecretStr = Field(SecretStr(""), alias="AIRTABLE_API_KEY")
    base_id: str = Field("", alias="AIRTABLE_BASE_ID")
    endpoint_url: Annotated[str, AfterValidator(_web_url)] = Field(
        "https://api.airtable.com", alias="AIRTABLE_ENDPOINT_URL")
    clients_table: str = Field("Clients", alias="AIRTABLE_CLIENTS_TABLE")
    attributes_table: str = Field("Scoring Attributes", alias="AIRTABLE_ATTRIBUTES_TABLE")
    client_id_field: str = Field("", alias="AIRTABLE_CLIENT_ID_FIELD")
    client_name_field: str = Field("Client Name", alias="AIRTABLE_CLIENT_NAME_FIELD")
    service_level_field: str = Field("Service Level", alias="AIRTABLE_SERVICE_LEVEL_FIELD")
    token_budget_field: str = Field("Token Budget", alias="AIRTABLE_TOKEN_BUDGET_FIELD")
    token_usage_field: str = Field("Token Usage", alias="AIRTABLE_TOKEN_USAGE_FIELD")
    budget_reset_date_field: str = Field("Budget Reset Date",
                                         alias="AIRTABLE_BUDGET_RESET_DATE_FIELD")
    last_token_update_field: str = Field("Last Token Update",
                                         alias="AIRTABLE_LAST_TOKEN_UPDATE_FIELD")
    email_field: str = Field("Email", alias="AIRTABLE_EMAIL_FIELD")
    account_manager_field: str = Field("Account Manager", alias="AIRTABLE_ACCOUNT_MANAGER_FIELD")
    client_attributes_field: str = Field("Scoring Attributes",
                                         alias="AIRTABLE_CLIENT_ATTRIBUTES_FIELD")
    attribute_id_field: str = Field("", alias="AIRTABLE_ATTRIBUTE_ID_FIELD")
    attribute_name_field: str = Field("Name", alias="AIRTABLE_ATTRIBUTE_NAME_FIELD")
    attribute_client_field: str = Field("Client", alias="AIRTABLE_ATTRIBUTE_CLIENT_FIELD")
    active_field: str = Field("Active", alias="AIRTABLE_ACTIVE_FIELD")
    instructions_field: str = Field("Instructions", alias="AIRTABLE_INSTRUCTIONS_FIELD")
    examples_field: str = Field("Examples", alias="AIRTABLE_EXAMPLES_FIELD")
    signals_field: str = Field("Signals", alias="AIRTABLE_SIGNALS_FIELD")
    sidecar: str = Field("data/airtable-sidecar.db", alias="AIRTABLE_SIDECAR")
    min_interval: Seconds = Field(0.22, alias="AIRTABLE_MIN_INTERVAL")
    rate_limit_penalty: Seconds = Field(30.0, alias="AIRTABLE_RATE_LIMIT_PENALTY")
    retries: int = Field(5, ge=0, alias="AIRTABLE_RETRIES")
    retry_backoff: Seconds = Field(1.0, alias="AIRTABLE_RETRY_BACKOFF")
    connect_timeout: Seconds = Field(10.0, alias="AIRTABLE_CONNECT_TIMEOUT")
    read_timeout: Seconds = Field(60.0, alias="AIRTABLE_READ_TIMEOUT")
    allow_replace: bool = Field(False, alias="AIRTABLE_ALLOW_REPLACE")
    # the mirror: how often reads ask Airtable what changed, how far back each asks (the
    # two clocks may differ), and how deletions are learnt: a webhook's payloads when the
    # token may manage webhooks ("auto"), else a listing of the ids every sweep interval
    sync_interval: Seconds = Field(30.0, alias="AIRTABLE_SYNC_INTERVAL")
    sync_overlap: Seconds = Field(5.0, alias="AIRTABLE_SYNC_OVERLAP")
    sweep_interval: Seconds = Field(3600.0, alias="AIRTABLE_SWEEP_INTERVAL")
    webhooks: Annotated[Literal["auto", "off"], BeforeValidator(_lower)] = Field(
        "auto", alias="AIRTABLE_WEBHOOKS")


class SmtpSettings(_Section):
    """Email alerts; no host means email is off."""

    host: str = Field("", alias="SMTP_HOST")
    security: Annotated[Literal["starttls", "tls", "none"], BeforeValidator(_lower)] = Field(
        "starttls", alias="SMTP_SECURITY")
    port: int | None = Field(None, gt=0, lt=65536, alias="SMTP_PORT")  # None: by security
    user: str = Field("", alias="SMTP_USER")
    password: SecretStr = Field(SecretStr(""), alias="SMTP_PASSWORD")
    sender: str = Field("", alias="SMTP_SENDER")  # "": the user
    timeout: Seconds = Field(30.0, alias="SMTP_TIMEOUT")

    @model_validator(mode="after")
    def _sender_is_an_address(self) -> SmtpSettings:
        if self.host and "@" not in (self.sender or self.user):
            raise ValueError("SMTP_SENDER: must be an email address, got "
                             f"{self.sender or self.user!r}")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def port_in_use(self) -> int:
        return self.port or (465 if self.security == "tls" else 587)

    @property
    def from_address(self) -> str:
        return self.sender or self.user


class LLMSettings(_Section):
    """An OpenAI-compatible endpoint for optional rewrites; no URL means none."""

    url: Annotated[str, AfterValidator(_web_url)] = Field("", alias="TOKENBUDGET_LLM_URL")
    model: str = Field("", alias="TOKENBUDGET_LLM_MODEL")
    api_key: SecretStr = Field(SecretStr(""), alias="TOKENBUDGET_LLM_API_KEY")
    timeout: Seconds = Field(60.0, alias="TOKENBUDGET_LLM_TIMEOUT")

    @model_validator(mode="after")
    def _model_with_url(self) -> LLMSettings:
        if self.url and not self.model:
            raise ValueError("TOKENBUDGET_LLM_MODEL: must be set with TOKENBUDGET_LLM_URL")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.url)


class AlertSettings(_Section):
    """When the scheduled pass emails, and to whom."""

    thresholds: Annotated[tuple[int, ...], BeforeValidator(_thresholds)] = Field(
        DEFAULT_THRESHOLDS, alias="TOKENBUDGET_ALERT_THRESHOLDS")
    recipients: Annotated[Literal["contact", "manager", "both"], BeforeValidator(_lower)] = Field(
        "both", alias="TOKENBUDGET_ALERT_RECIPIENTS")
    managers: Annotated[dict[str, str], BeforeValidator(_managers)] = Field(
        default_factory=dict, alias="TOKENBUDGET_MANAGER_EMAILS")
    # how long an alert claimed by a pass that died stays claimed before another pass
    # takes it over (and sends it): longer than the slowest send, so a live pass keeps it
    claim_lease: float = Field(900.0, gt=0, alias="TOKENBUDGET_ALERT_CLAIM_LEASE")


class DeactivationSettings(_Section):
    """Automatic deactivation's defaults; an admin's choice kept with the data wins."""

    enabled: Annotated[bool, BeforeValidator(_lower)] = Field(
        False, alias="TOKENBUDGET_AUTO_DEACTIVATE")
    order: Annotated[Literal["newest", "largest"], BeforeValidator(_lower)] = Field(
        "newest", alias="TOKENBUDGET_AUTO_DEACTIVATE_ORDER")


class CostSettings(_Section):
    """What turns tokens into money: there is no per-client leads field, so one figure."""

    leads_per_month: int = Field(1_000, ge=0, alias="TOKENBUDGET_LEADS_PER_MONTH")
    price_per_mtok: NonNegative = Field(2.50, alias="TOKENBUDGET_PRICE_PER_MTOK")
    currency: str = Field("USD", alias="TOKENBUDGET_CURRENCY")
    revenue_by_level: Annotated[dict[int, float], BeforeValidator(_revenue)] = Field(
        default_factory=dict, alias="TOKENBUDGET_TIER_REVENUE")


SECTIONS: dict[str, type[_Section]] = {
    "airtable": AirtableSettings, "smtp": SmtpSettings, "llm": LLMSettings,
    "alerts": AlertSettings, "deactivation": DeactivationSettings, "costs": CostSettings}


class Schema(_Section):
    """Every setting: the top-level ones, then one field per section."""

    store: str = Field(DEFAULT_STORE, alias="TOKENBUDGET_STORE")
    encoding: Annotated[str, AfterValidator(_encoding)] = Field(
        DEFAULT_ENCODING, alias="TOKENBUDGET_ENCODING")
    warning: float = Field(0.8, gt=0, le=1, alias="TOKENBUDGET_WARNING")
    upgrade_url: str = Field("https://example.com/upgrade", alias="TOKENBUDGET_UPGRADE_URL")
    max_text_chars: int = Field(100_000, ge=1, alias="TOKENBUDGET_MAX_TEXT_CHARS")
    lock_timeout: Seconds = Field(DEFAULT_LOCK_TIMEOUT, alias="TOKENBUDGET_LOCK_TIMEOUT")
    # the largest request body the API reads (three plain texts at the text limit: ~300 KB)
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1,
                                alias="TOKENBUDGET_MAX_BODY_BYTES")
    # a usage trend is fitted only over history spanning this many days: edits minutes
    # apart say nothing about tokens per day
    trend_min_days: float = Field(7, gt=0, alias="TOKENBUDGET_TREND_MIN_DAYS")
    roles: Annotated[dict[str, str], BeforeValidator(_roles)] = Field(
        default_factory=dict, alias="TOKENBUDGET_ROLES")
    api_tokens: Annotated[dict[str, str], BeforeValidator(_api_tokens)] = Field(
        default_factory=dict, alias="TOKENBUDGET_API_TOKENS", repr=False)
    airtable: AirtableSettings = AirtableSettings()
    smtp: SmtpSettings = SmtpSettings()
    llm: LLMSettings = LLMSettings()
    alerts: AlertSettings = AlertSettings()
    deactivation: DeactivationSettings = DeactivationSettings()
    costs: CostSettings = CostSettings()

    def secret_values(self) -> list[str]:
        """Every secret these settings hold, for scrubbing messages and logs: the API
        tokens, the keys, the SMTP password and a password in the store's URL."""
        found: list[Any] = [*self.api_tokens, self.airtable.api_key, self.smtp.password,
                            self.llm.api_key, *url_passwords(self.store)]
        return [s.get_secret_value() if isinstance(s, SecretStr) else s for s in found
                if (s.get_secret_value() if isinstance(s, SecretStr) else s)]
