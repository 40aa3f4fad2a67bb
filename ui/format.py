"""How the pages write a status."""

from budget import views


def status_badge(status: str) -> str:
    """A coloured badge in the app's status palette (ok, warning, exceeded)."""
    colour = {"ok": "green", "warning": "orange", "exceeded": "red"}[status]
    return f":{colour}-badge[{views.STATUS_LABELS[status]}]"
