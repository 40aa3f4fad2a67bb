"""Settings from the environment, then `.streamlit/secrets.toml`, then defaults.

Secrets never leave this module in messages: `Settings.__repr__` hides them."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .model import ROLES, BadInput
from .tokens import DEFAULT_ENCODING, ENCODINGS

DEFAULT_STORE = "sqlite:///data/tokenbudget.db"
SECRETS_FILE = Path(".streamlit/secrets.toml")


def _secrets(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BadInput(str(path), "file", f"cannot read secrets: {e}") from None


@dataclass(frozen=True)
class Settings:
    store: str = DEFAULT_STORE
    encoding: str = DEFAULT_ENCODING
    warning: float = 0.8
    upgrade_url: str = "https://example.com/upgrade"
    max_text_chars: int = 100_000
    roles: dict = field(default_factory=dict)  # email -> viewer | analyst | admin
    api_tokens: dict = field(default_factory=dict, repr=False)  # bearer token -> role
    raw: dict = field(default_factory=dict, repr=False)  # every key, for the stores

    @classmethod
    def load(cls, secrets_file: Path | None = None, **overrides: object) -> Settings:
        values = dict(_secrets(secrets_file or SECRETS_FILE))
        values.update({k: v for k, v in os.environ.items()
                       if k.startswith(("TOKENBUDGET_", "AIRTABLE_", "SMTP_", "API_"))})

        def get(key: str, default: object) -> object:
            if key.lower() in overrides and overrides[key.lower()] is not None:
                return overrides[key.lower()]
            return values.get(f"TOKENBUDGET_{key}", default)

        encoding = str(get("ENCODING", DEFAULT_ENCODING))
        if encoding not in ENCODINGS:
            raise BadInput("settings", "TOKENBUDGET_ENCODING",
                           f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
        try:
            warning = float(get("WARNING", 0.8))  # type: ignore[arg-type]
            max_chars = int(get("MAX_TEXT_CHARS", 100_000))  # type: ignore[arg-type]
        except (TypeError, ValueError) as e:
            raise BadInput("settings", "TOKENBUDGET_WARNING/MAX_TEXT_CHARS", str(e)) from None
        if not 0 < warning <= 1:
            raise BadInput("settings", "TOKENBUDGET_WARNING", f"must be in (0, 1], got {warning}")
        return cls(store=str(get("STORE", DEFAULT_STORE)), encoding=encoding, warning=warning,
                   upgrade_url=str(get("UPGRADE_URL", cls.upgrade_url)),
                   max_text_chars=max_chars, roles=parse_roles(get("ROLES", {})),
                   api_tokens=parse_api_tokens(get("API_TOKENS", {})), raw=values)


def parse_roles(value: object) -> dict[str, str]:
    """`a@x.com:admin,b@x.com:viewer` (env) or a TOML table {email = role}."""
    pairs = (value.items() if isinstance(value, dict) else
             (item.rsplit(":", 1) for item in str(value).split(",") if item.strip()))
    roles = {}
    for pair in pairs:
        if len(pair) != 2:
            raise BadInput("settings", "TOKENBUDGET_ROLES", f"expected EMAIL:ROLE, got {pair!r}")
        email, role = (str(x).strip() for x in pair)
        if role not in ROLES:
            raise BadInput("settings", "TOKENBUDGET_ROLES",
                           f"{email}: unknown role {role!r}; use one of {', '.join(ROLES)}")
        roles[email.lower()] = role
    return roles


def parse_api_tokens(value: object) -> dict[str, str]:
    """The HTTP API's bearer tokens: `TOKEN:ROLE,...` (env) or a TOML table {TOKEN = role}.

    Unlike `parse_roles`, a message names a bad entry by its position, never by its
    text: the text is a secret."""
    pairs = (list(value.items()) if isinstance(value, dict) else
             [item.rsplit(":", 1) for item in str(value).split(",") if item.strip()])
    tokens = {}
    for n, pair in enumerate(pairs, 1):
        token, role = (str(x).strip() for x in pair) if len(pair) == 2 else ("", "")
        if not token or not role:
            raise BadInput("settings", "TOKENBUDGET_API_TOKENS", f"entry {n}: expected TOKEN:ROLE")
        if role not in ROLES:
            raise BadInput("settings", "TOKENBUDGET_API_TOKENS",
                           f"entry {n}: the role after the last ':' is not one of "
                           f"{', '.join(ROLES)}")  # not echoed: TOKEN and ROLE may be swapped
        tokens[token] = role
    return tokens
