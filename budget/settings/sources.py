"""Where settings come from, in order: the environment, then `.streamlit/secrets.toml`,
then the schema's defaults (pydantic-settings merges the sources in that priority).

Both sources speak the names a person sets (`SMTP_HOST`); secrets.toml may also group
a section in a table of its own (`[airtable]` with `api_key = "..."`)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..model import BadInput
from .schema import SECTIONS, Schema

SECRETS_FILE = Path(".streamlit/secrets.toml")
PREFIXES = ("TOKENBUDGET_", "AIRTABLE_", "SMTP_")


def read_secrets(path: Path) -> dict[str, Any]:
    """The secrets file as a dict; none at all is an empty one."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BadInput(str(path), "file", f"cannot read secrets: {e}") from None


def _alias(info: FieldInfo, name: str) -> str:
    return info.alias or name


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat names (and section tables) to the schema's shape: top-level settings by
    alias, each section as a dict of its own."""
    out: dict[str, Any] = {}
    for name, info in Schema.model_fields.items():
        if name in SECTIONS:
            section = {_alias(sub, n): flat[_alias(sub, n)]
                       for n, sub in SECTIONS[name].model_fields.items() if _alias(sub, n) in flat}
            table = flat.get(name)
            if isinstance(table, Mapping):
                section = {**table, **section}
            if section:
                out[name] = section
        elif _alias(info, name) in flat:
            out[_alias(info, name)] = flat[_alias(info, name)]
    return out


class FlatSource(PydanticBaseSettingsSource):
    """One mapping of flat names (the environment, or secrets.toml) as a settings source."""

    def __init__(self, settings_cls: type[BaseSettings], flat: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = nest(flat)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ answers for every field at once

    def __call__(self) -> dict[str, Any]:
        return self.values


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(PREFIXES)}
