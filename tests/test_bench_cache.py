"""Pages cache their figures on the store's data version: reruns reuse them, and a
change made elsewhere (another process, the CLI) shows on the next run without Refresh."""

from budget.service import BudgetService
from budget.stores import SQLiteStore
from tests.support.factories import ADMIN


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_sqlite_data_version_moves_with_every_commit(small):
    other = SQLiteStore(small.store.path)  # another connection, as another process has
    before = other.data_version()
    assert other.data_version() == before  # reading changes nothing
    small.set_budget_override(ADMIN, "A", 60)
    after = other.data_version()
    assert after != before
    small.set_budget_override(ADMIN, "A", 61)
    assert other.data_version() not in (before, after)


def test_rerun_reuses_figures_and_sees_changes_made_elsewhere(app, small, monkeypatch):
    loads = []
    real = BudgetService.usage_report

    def counted(self):
        loads.append(1)
        return real(self)

    monkeypatch.setattr(BudgetService, "usage_report", counted)
    at = app(small.store.path)
    assert metrics(at)["Clients over budget"] == "0" and len(loads) == 1
    at.run()
    assert len(loads) == 1  # nothing changed: the cached figures are used

    small.set_budget_override(ADMIN, "A", 60)  # not through this app: no Refresh happens
    at.run()
    assert not at.exception
    assert len(loads) == 2
    assert metrics(at)["Clients over budget"] == "1"


def test_store_without_a_version_keys_the_cache_on_a_five_minute_window(monkeypatch):
    import ui.loaders
    import ui.session

    class NoVersion:  # like the Airtable store: no cheap way to tell
        pass

    svc = BudgetService.__new__(BudgetService)
    svc.store = NoVersion()  # type: ignore[assignment]
    assert svc.data_version() is None
    monkeypatch.setattr(ui.session, "service", lambda: svc)
    now = [300 * 4_000.0]  # the start of a window
    monkeypatch.setattr(ui.loaders.time, "time", lambda: now[0])
    first = ui.data_version()
    now[0] += 299
    assert ui.data_version() == first
    now[0] += 2
    assert ui.data_version() != first
