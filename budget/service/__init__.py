"""The one door to the data: every read the pages need and every write, checked.

Validation, role checks, the stored Token Usage copy, history snapshots and the
audit log all happen in the service, so no page, CLI command or API call can skip
them. `BudgetService` is one object for its callers; its capabilities live in a
module each over a shared base (`base.ServiceBase`)."""

from __future__ import annotations

from ..settings import Settings
from ..stores import open_store
from .admin import Admin
from .edits import BatchResult, Edits
from .resets import ResetResult
from .scheduled_pass import ScheduledPass
from .suggestions import Suggestions

__all__ = ["BatchResult", "BudgetService", "ResetResult"]


class BudgetService(Edits, Admin, ScheduledPass, Suggestions):
    @classmethod
    def from_settings(cls, settings: Settings) -> BudgetService:
        return cls(open_store(settings.store, settings.airtable, settings.lock_timeout),
                   settings)
