"""AppTest helpers: the app from its entry file, and the text a page shows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]

# an `[auth]` section turns the login on; AppTest never talks to the provider
AUTH_SECRETS = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback",
                         "cookie_secret": "not-a-secret", "client_id": "tokenbudget",
                         "client_secret": "not-a-secret",
                         "server_metadata_url": "https://id.example/.well-known/openid-configuration"}}


def run_app(page: str | None = None, *, user: dict[str, Any] | None = None,
            secrets: dict[str, Any] | None = None, **params: str) -> AppTest:
    """The app from its entry file, with query parameters, switched to `page`; `user`
    (st.user's claims) and `secrets` seed a login."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    if secrets is not None:
        at.secrets = secrets
    if user is not None:
        at.user = user
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def signed_in(email: str) -> dict[str, Any]:
    """What `run_app` needs to run the app as `email`, logged in through `[auth]`."""
    return {"secrets": AUTH_SECRETS, "user": {"is_logged_in": True, "email": email}}


@dataclass(frozen=True)
class LiveBox:
    """A live text box (ui.live_text) as AppTest sees it. AppTest cannot run its
    JavaScript, so `input` sets the component's state as the browser sends it."""

    at: AppTest
    key: str
    label: str
    value: str  # the text the page drew the box with
    limit: int
    note: str  # the page's figure next to the character count: the field's tokens

    def input(self, text: str) -> AppTest:
        self.at.session_state[self.key] = {"value": text}
        return self.at


def live_boxes(at: AppTest) -> list[LiveBox]:
    """The live text boxes the last run drew, top to bottom."""
    out = []
    for e in at.get("bidi_component"):
        if e.proto.component_name == "tokenbudget.live_text":
            data = json.loads(e.proto.mixed.json or e.proto.json)
            out.append(LiveBox(at, data["key"], data["label"], data["value"], data["limit"],
                               data["note"]))
    return out


def live_box(at: AppTest, label: str) -> LiveBox:
    return next(b for b in live_boxes(at) if b.label == label)


def text_of(at) -> str:
    return "\n".join(str(e.value) for e in (*at.markdown, *at.subheader, *at.caption,
                                            *at.warning, *at.error, *at.info, *at.title))


# the Analytics tabs, each with the keys of its charts
TABS = {"Top attributes": {"top_attributes"}, "Approaching limits": {"headroom"},
        "By tier": {"by_tier"}, "Usage over time": {"overall_over_time", "client_over_time"},
        "chars4 vs real": {"estimate_error"}, "Prompt cost": {"prompt_cost"}}
CHARTS = set().union(*TABS.values())


def open_tab(at, label: str):
    """The Analytics page with the tab `label` open: the open tab lives in the URL."""
    at.query_params["an_view"] = label
    return at.run()


def opens(at, page: str) -> bool:
    """Whether `page` is in the navigation this run built (AppTest refuses the others)."""
    try:
        at.switch_page(page)
    except ValueError:
        return False
    return True
