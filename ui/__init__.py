"""Streamlit glue shared by the pages, one concept per module: the service and who acts
(`session`), cached loaders (`loaders`), writes (`writes`), the confirmation dialog
(`dialogs`), the suggestion card (`cards`), charts (`charts`), badges and the usage
headline (`format`), choice widgets labelled with moving figures (`picks`). Pages use
it as `ui.name`."""

from ui.cards import suggestion_card
from ui.charts import COLOURS, DIRECTION_COLOURS, LABELS, SERIES, chart, csv_download
from ui.dialogs import ask, confirm
from ui.format import status_badge, usage_headline
from ui.loaders import (
    banner,
    begin_run,
    client_detail,
    client_labels,
    costs,
    data_version,
    due_plan,
    freshness,
    history,
    mirror_freshness,
    refresh,
    savings,
    templates,
    top_costs,
    usage_table,
)
from ui.picks import show_current_labels
from ui.session import (
    actor,
    auth_configured,
    load_tokenizer_ahead,
    local_mode_caption,
    read_only_reason,
    service,
)
from ui.writes import (
    after_write,
    apply_change,
    attempt,
    change_on_click,
    last_write,
    refusals,
    seen_version,
)

__all__ = ["COLOURS", "DIRECTION_COLOURS", "LABELS", "SERIES", "actor", "after_write",
           "apply_change", "ask", "attempt", "auth_configured", "banner", "begin_run",
           "change_on_click", "chart", "client_detail", "client_labels", "confirm", "costs",
           "csv_download", "data_version", "due_plan", "freshness", "history", "last_write",
           "load_tokenizer_ahead", "local_mode_caption", "mirror_freshness", "read_only_reason",
           "refresh", "refusals", "savings", "seen_version", "service", "show_current_labels",
           "status_badge", "suggestion_card", "templates", "top_costs", "usage_headline",
           "usage_table"]
