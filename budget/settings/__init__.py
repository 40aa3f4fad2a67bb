"""Settings: one typed schema (`schema.py`), read from the environment, then
`.streamlit/secrets.toml`, then defaults (`sources.py`).

`Settings(...)` is exactly what is passed plus the defaults, so tests and code that
build one never pick up the environment by accident; `Settings.load()` reads the
sources. Every part of the app receives its typed section (`settings.smtp`,
`settings.airtable`, ...) already checked; a bad value stops the load with
`settings: NAME: problem`, NAME being what a person sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..model import BadInput
from .schema import (DEFAULT_STORE, DEFAULT_THRESHOLDS, SECTIONS, AirtableSettings,
                     AlertSettings, CostSettings, DeactivationSettings, LLMSettings, Schema,
                     SmtpSettings)
from .sources import SECRETS_FILE, FlatSource, environment, read_secrets

__all__ = ["DEFAULT_STORE", "DEFAULT_THRESHOLDS", "SECRETS_FILE", "AirtableSettings",
           "AlertSettings", "CostSettings", "DeactivationSettings", "LLMSettings", "Settings",
           "SmtpSettings", "settings_error"]


class Settings(Schema):
    """Every setting, typed and checked."""

    @classmethod
    def load(cls, secrets_file: Path | None = None, **overrides: object) -> Settings:
        """The environment, then the secrets file, then defaults; `overrides` (e.g. the
        CLI's --store) win over all three. None in an override means: not given."""
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        _Loading.flat_sources = (environment(), read_secrets(secrets_file or SECRETS_FILE))
        try:
            return Settings.model_validate(_Loading(**given).model_dump(by_alias=True))
        except ValidationError as e:
            raise settings_error(e) from None


class _Loading(BaseSettings, Settings):
    """pydantic-settings' merge of the sources, used only inside `Settings.load`."""

    model_config = SettingsConfigDict(extra="ignore", validate_by_name=True,
                                      validate_by_alias=True)
    flat_sources: ClassVar[tuple[dict[str, Any], ...]] = ()

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, *(FlatSource(settings_cls, flat) for flat in cls.flat_sources))


def _name(loc: tuple[int | str, ...]) -> str:
    """The name a person sets for an error's location (alias or field name)."""
    model: type[BaseModel] | None = Schema
    name = "settings"
    for part in loc:
        fields = model.model_fields if model else {}
        info = fields.get(str(part)) or next(
            (f for f in fields.values() if f.alias == part), None)
        if info is None:
            break
        field_name = next(n for n, f in fields.items() if f is info)
        name = info.alias or field_name
        model = SECTIONS.get(field_name) if model is Schema else None
    return name


def settings_error(error: ValidationError) -> BadInput:
    """The first problem as `settings: NAME: problem`, never echoing a secret."""
    first = error.errors()[0]
    name, problem = _name(tuple(first["loc"])), str(first["msg"]).removeprefix("Value error, ")
    if ": " in problem and problem.split(": ", 1)[0].isupper():
        name, problem = problem.split(": ", 1)  # a check across fields names its own
    secret = any(k in name for k in ("KEY", "PASSWORD", "TOKENS"))
    if first["type"] != "value_error" and not secret:
        problem += f", got {first['input']!r}"
    return BadInput("settings", name, problem)
