"""The HTTP API: the lead-scoring application asks here before it saves an attribute.

A third thin door onto `BudgetService`, beside the pages and the CLI, so all three give
the same answer for the same change and share its role checks and audit log. Callers
send `Authorization: Bearer TOKEN`; tokens and their roles come from settings
(`TOKENBUDGET_API_TOKENS`). Any valid token may read and validate; saving, resetting and
changing tiers take an admin's token (and the service checks the role again).

Serve it with `make api`, i.e. `uvicorn --factory budget.api:from_settings`.
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations
# at run time, and the body models are built per app (their text limit is a setting).

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from .api_guard import RequestGuard, Unauthorized, error_response, identify
from .views import usage_row
from .model import FIELDS, Actor, Attribute, BadInput, Change, NotAllowed, StaleWrite
from .service import BudgetService
from .settings import Settings
from .stores import StoreBusy, StoreError

log = logging.getLogger("uvicorn.error")  # shown with uvicorn's own start-up lines
MAX_BULK = 500  # ids in one bulk activation; the stores read them in one query
_STRICT = ConfigDict(extra="forbid", strict=True)  # no "yes" for true, no 1.5 for 1
RETRY_AFTER = {"busy": "1", "down": "30"}  # seconds: a lock frees soon, a server not


# response bodies -----------------------------------------------------------------------
class Problem(BaseModel):
    record: str = Field(description="what was wrong, e.g. 'attribute a1' or 'client C042'")
    field: str = Field(description="which field of it, e.g. 'Instructions' or 'id'")
    problem: str


class ErrorOut(BaseModel):
    """Every 401, 403, 409 (stale write), 413, 422 and 503 answer."""

    error: Literal["unauthorized", "forbidden", "conflict", "too_large", "bad_input",
                   "unavailable"]
    message: str
    problems: list[Problem] = Field(default=[], description="422 only: one per bad value")


class UsageOut(BaseModel):
    """One client: the keys of `tokenbudget usage --json`."""

    client_id: str
    name: str
    service_level: int
    budget: int
    usage: int
    remaining: int
    percent_used: int
    status: Literal["ok", "warning", "exceeded"]
    budget_reset_date: date | None


class ValidationOut(BaseModel):
    """A change's effect on its client's usage, as `tokenbudget validate --json` says it."""

    allowed: bool
    current: int = Field(description="the client's usage now, in tokens")
    projected: int = Field(description="its usage after the change")
    budget: int
    delta: int = Field(description="projected - current")
    over_by: int = Field(description="tokens over budget after the change, 0 if none")


class SavedOut(ValidationOut):
    version: int = Field(description="the attribute's version now; send it back as "
                                     "`version` to refuse a save over someone else's")


class RefusedOut(ValidationOut):
    """409: over budget, nothing saved."""

    error: Literal["over_budget"]
    message: str


class ClientValidationOut(ValidationOut):
    client_id: str


class BulkOut(BaseModel):
    allowed: bool
    clients: list[ClientValidationOut] = Field(description="one per client the ids belong to")


class BulkRefusedOut(BulkOut):
    """409: at least one client would go over budget; nothing saved for any."""

    error: Literal["over_budget"]
    message: str


class AttributeOut(BaseModel):
    id: str
    client_id: str
    name: str
    active: bool
    version: int
    tokens: int = Field(description="Instructions + Examples + Signals, in tokens")


class ResetOut(BaseModel):
    client_id: str
    changed: bool = Field(description="false when already reset for this period")
    usage: int
    budget_reset_date: date
    message: str


class HealthOut(BaseModel):
    status: Literal["ok"]


# request bodies --------------------------------------------------------------------------
class BulkActivateBody(BaseModel):
    model_config = _STRICT
    ids: list[str] = Field(min_length=1, max_length=MAX_BULK,
                           description="attribute ids, of one client or several")


class ServiceLevelBody(BaseModel):
    model_config = _STRICT
    service_level: int = Field(ge=1, description="a level of the tier table")
    expected_version: int | None = Field(
        default=None, ge=0, description="refuse (409) if the client changed since this version")


def _change_bodies(max_chars: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """The validate and PATCH bodies; their texts carry the configured size limit, so the
    OpenAPI document states it."""
    text = Annotated[str, StringConstraints(max_length=max_chars)]
    texts = create_model(
        "FieldTexts", __config__=_STRICT,
        __doc__=f"New texts; a field left out keeps its text. At most {max_chars:,} characters.",
        **{name: (text | None, None) for name in FIELDS})  # type: ignore[call-overload]
    change = create_model(
        "ChangeBody", __config__=_STRICT, __doc__="Give `active`, `fields` or both.",
        active=(bool | None, Field(None, description="the attribute's new Active flag")),
        fields=(texts | None, None))
    patch = create_model(
        "PatchBody", __base__=change,
        version=(int | None, Field(None, ge=0, description="refuse (409) if the attribute "
                                                           "changed since this version")))
    return change, patch


def _change(attr: Attribute, body: Any) -> Change:
    texts = {k: v for k, v in (body.fields.model_dump() if body.fields else {}).items()
             if v is not None}
    if not texts and body.active is None:
        raise BadInput(f"attribute {attr.id}", "change",
                       f"give active or fields ({', '.join(FIELDS)})")
    return Change(attr.client_id, {attr.id: texts} if texts else {},
                  {} if body.active is None else {attr.id: body.active})


def _expected_versions(attr: Attribute, body: Any) -> dict[str, int] | None:
    """A PATCH body's `version` as the service's expected versions; None: not checked."""
    return None if body.version is None else {attr.id: body.version}


# errors ------------------------------------------------------------------------------------
def _loc_field(loc: tuple) -> str:
    """('body', 'fields', 'Instructions') -> 'fields.Instructions';
    ('body', 'ids', 2) -> 'ids[2]'."""
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:]]
    return "".join(parts).lstrip(".") or str(loc[0])


def _problem(request: Request, e: dict) -> dict:
    params = request.path_params
    record = (f"attribute {params['attribute_id']}" if "attribute_id" in params else
              f"client {params['client_id']}" if "client_id" in params else "request")
    problem = e["msg"]
    if e["type"] == "string_too_long":  # said as the service says it
        problem = (f"{len(e['input']):,} characters is over the limit of "
                   f"{e['ctx']['max_length']:,}")
    field = "body" if e["type"] == "json_invalid" else _loc_field(e["loc"])  # loc: a position
    return {"record": record, "field": field, "problem": problem}


def _install_error_handlers(app: FastAPI, redacted: Callable[[object], str]) -> None:
    """Every error as JSON; a message that quotes a store's or a server's words is
    `redacted` of every secret the settings hold."""
    async def bad_input(request: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, BadInput)
        return error_response(422, "bad_input", redacted(e), problems=[
            {"record": e.record, "field": e.field, "problem": redacted(e.problem)}])

    async def invalid_request(request: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, RequestValidationError)
        problems = [_problem(request, err) for err in e.errors()]
        return error_response(
            422, "bad_input",
            "; ".join(f"{p['record']}: {p['field']}: {p['problem']}" for p in problems),
            problems=problems)

    def simple(status: int, error: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(request: Request, e: Exception) -> JSONResponse:
            return error_response(status, error, redacted(e))
        return handler

    async def unavailable(request: Request, e: Exception) -> JSONResponse:
        """Busy past the lock timeout or unreachable: the caller may send the same
        request again, after Retry-After."""
        wait = RETRY_AFTER["busy" if isinstance(e, StoreBusy) else "down"]
        if isinstance(e, StoreBusy) and e.retry_after is not None:
            wait = str(math.ceil(e.retry_after))
        return error_response(503, "unavailable", redacted(e), {"Retry-After": wait})

    app.add_exception_handler(BadInput, bad_input)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StoreError, unavailable)
    for exc, status, error in ((Unauthorized, 401, "unauthorized"),
                               (NotAllowed, 403, "forbidden"), (StaleWrite, 409, "conflict")):
        app.add_exception_handler(exc, simple(status, error))


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "no token or an unknown one", 403: "the token's role may not do this",
            409: "the record changed since the given version",
            413: "the body is over TOKENBUDGET_MAX_BODY_BYTES", 422: "bad input; "
            "each problem names the record and the field",
            503: "the store is busy or did not answer; try again after Retry-After seconds"}
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}


# the app -------------------------------------------------------------------------------------
def create_app(service: BudgetService, tokens: Mapping[str, str] | None = None) -> FastAPI:
    """The API over `service`; `tokens` (token -> role) default to the service's settings."""
    tokens = dict(service.settings.api_tokens if tokens is None else tokens)
    ChangeBody, PatchBody = _change_bodies(service.settings.max_text_chars)
    bearer = HTTPBearer(auto_error=False, description="a token from TOKENBUDGET_API_TOKENS")
    app = FastAPI(title="tokenbudget", version="1", description=__doc__)
    _install_error_handlers(app, service.redacted)
    # before any route: the token before the body, and no body over the limit
    app.add_middleware(RequestGuard, tokens=tokens,
                       max_body_bytes=service.settings.max_body_bytes)

    def caller(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                      Depends(bearer)]) -> Actor:
        return identify(tokens, credentials.credentials if credentials else None)

    def admin(actor: Annotated[Actor, Depends(caller)]) -> Actor:
        """Writes are refused before any lookup (the service checks the role again)."""
        if actor.role != "admin":
            raise NotAllowed(f"{actor.name} ({actor.role}) may not change data; only admins may")
        return actor

    Reader = Annotated[Actor, Depends(caller)]
    Admin = Annotated[Actor, Depends(admin)]

    @app.get("/healthz", response_model=HealthOut, responses=_responses(503))
    def healthz() -> dict:
        """Up, and the store answers. Needs no token."""
        service.tiers()
        return {"status": "ok"}

    @app.get("/api/token-usage", response_model=list[UsageOut],
             responses=_responses(401, 422, 503))
    def token_usage(actor: Reader, client_id: Annotated[str | None, Query()] = None) -> list:
        """Usage against budget of every client, or of one."""
        report = ([service.client_usage(client_id)] if client_id is not None
                  else service.usage_report())
        return [usage_row(u) for u in report]

    @app.get("/api/attributes/{attribute_id}", response_model=AttributeOut,
             responses=_responses(401, 422, 503))
    def attribute(actor: Reader, attribute_id: str) -> dict:
        """An attribute's client, flag, version and tokens (its texts stay with the caller)."""
        a = service.attributes_by_id([attribute_id])[attribute_id]
        tokens_now = next(c.total for c in service.costs(a.client_id) if c.id == a.id)
        return {"id": a.id, "client_id": a.client_id, "name": a.name, "active": a.active,
                "version": a.version, "tokens": tokens_now}

    @app.post("/api/attributes/{attribute_id}/validate-budget", response_model=ValidationOut,
              responses=_responses(401, 413, 422, 503))
    def validate_budget(actor: Reader, attribute_id: str, body: ChangeBody) -> dict:  # type: ignore[valid-type]
        """What the change would do to its client's usage; saves nothing."""
        attr = service.attributes_by_id([attribute_id])[attribute_id]
        return service.validate(_change(attr, body)).as_dict()

    @app.patch("/api/attributes/{attribute_id}", response_model=SavedOut,
               responses={409: {"model": RefusedOut | ErrorOut,
                                "description": "over budget (nothing saved), or the "
                                               "attribute changed since `version`"},
                          **_responses(401, 403, 413, 422, 503)})
    def patch_attribute(actor: Admin, attribute_id: str, body: PatchBody) -> Any:  # type: ignore[valid-type]
        """Saves the change only if the budget allows it; 409 with the numbers if not."""
        attr = service.attributes_by_id([attribute_id])[attribute_id]
        result = service.apply(actor, _change(attr, body), _expected_versions(attr, body))
        if not result.allowed:
            return JSONResponse({"error": "over_budget", "message": f"refused, nothing "
                                 f"saved: client {attr.client_id} {result.reason}",
                                 **result.as_dict()}, 409)
        version = service.attributes_by_id([attr.id])[attr.id].version
        return {**result.as_dict(), "version": version}

    @app.post("/api/attributes/bulk-activate", response_model=BulkOut,
              responses={409: {"model": BulkRefusedOut,
                               "description": "over budget: nothing saved for any client"},
                         **_responses(401, 403, 413, 422, 503)})
    def bulk_activate(actor: Admin, body: BulkActivateBody) -> Any:
        """Activates all the attributes or none: each client's share is checked as one
        change, and all are saved together only if every client stays within budget."""
        attrs = service.attributes_by_id(body.ids)
        per_client: dict[str, dict[str, bool]] = {}
        for aid in dict.fromkeys(body.ids):
            per_client.setdefault(attrs[aid].client_id, {})[aid] = True
        changes = [Change(cid, active=active) for cid, active in per_client.items()]
        results = service.apply_together(actor, changes)
        out = {"allowed": all(r.allowed for r in results),
               "clients": [{"client_id": c.client_id, **r.as_dict()}
                           for c, r in zip(changes, results, strict=True)]}
        if out["allowed"]:
            return out
        refused = "; ".join(f"client {c.client_id} {r.reason}"
                            for c, r in zip(changes, results, strict=True) if not r.allowed)
        return JSONResponse({"error": "over_budget",
                             "message": f"refused, nothing saved: {refused}", **out}, 409)

    @app.post("/api/clients/{client_id}/reset", response_model=ResetOut,
              responses=_responses(401, 403, 413, 422, 503))
    def reset(actor: Admin, client_id: str) -> dict:
        """Recomputes usage and starts the next period (a second run in the period is a no-op)."""
        r = service.reset(actor, client_id)
        return {"client_id": r.client_id, "changed": r.changed, "usage": r.usage,
                "budget_reset_date": r.budget_reset_date, "message": r.message}

    @app.put("/api/clients/{client_id}/service-level", response_model=UsageOut,
             responses=_responses(401, 403, 409, 413, 422, 503))
    def service_level(actor: Admin, client_id: str, body: ServiceLevelBody) -> dict:
        """Moves the client to another tier; answers with its usage against the new budget."""
        service.set_service_level(actor, client_id, body.service_level, body.expected_version)
        return usage_row(service.client_usage(client_id))

    return app


def from_settings() -> FastAPI:
    """The app `make api` serves: settings from the environment and secrets."""
    settings = Settings.load()
    if not settings.api_tokens:
        log.warning("no API tokens configured (TOKENBUDGET_API_TOKENS): every /api "
                    "request will get 401")
    return create_app(BudgetService.from_settings(settings))
