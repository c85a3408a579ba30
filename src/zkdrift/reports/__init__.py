"""Reports: tidy pandas DataFrames straight from the store, secrets redacted,
and the HTML report the notebooks render.

- :mod:`.window`: report windows (``since``/``until``) in words and as datetimes;
- :mod:`.common`: the data source (an Engine, a Session or an App), the tree
  and the notebook's App;
- :mod:`.history`: snapshots, changes and churn (machine values);
- :mod:`.drift`: drift over time, open drift, time to reconcile, the apply
  audit (machine values);
- :mod:`.detail`: the verdict, and what drifted for people: desired -> live
  (redacted), since when, who last changed it;
- :mod:`.views`: the other report sections as frames of display text;
- :mod:`.display`: HTML tables, notes and the verdict banner for notebooks;
- :mod:`.plots`: the charts (imported on demand: it pulls in matplotlib);
- :mod:`.render`: executing the notebooks into one HTML page (imported on demand:
  it pulls in papermill and nbconvert).

The notebooks use this package as ``from zkdrift import reports``.
"""

from zkdrift.reports.common import (
    NotebookSetupError,
    Source,
    database_label,
    default_tree,
    engine_of,
    notebook_app,
    notebook_tree,
    redactor_of,
    require_tree,
)
from zkdrift.reports.detail import (
    DETAIL_COLUMNS,
    Verdict,
    drift_verdict,
    observed_only_text,
    open_drift_detail,
)
from zkdrift.reports.display import (
    Html,
    Table,
    as_text,
    caption,
    cell_text,
    facts,
    header,
    note,
    style,
    table,
    verdict_banner,
)
from zkdrift.reports.drift import apply_audit, drift_over_time, open_drift, time_to_reconcile
from zkdrift.reports.history import (
    MAX_VALUE_CHARS,
    change_log,
    churn_by_path,
    churn_by_subtree,
    history_note,
    snapshots_over_time,
    subtree_at,
    summary,
    watch_log,
)
from zkdrift.reports.views import (
    apply_history,
    bytes_text,
    churn_table,
    generated_text,
    recent_changes,
    reconciled_drift,
    snapshot_table,
    summary_facts,
)
from zkdrift.reports.window import When, describe_window, parse_when

__all__ = [
    "DETAIL_COLUMNS",
    "MAX_VALUE_CHARS",
    "Html",
    "NotebookSetupError",
    "Source",
    "Table",
    "Verdict",
    "When",
    "apply_audit",
    "apply_history",
    "as_text",
    "bytes_text",
    "caption",
    "cell_text",
    "change_log",
    "churn_by_path",
    "churn_by_subtree",
    "churn_table",
    "database_label",
    "default_tree",
    "describe_window",
    "drift_over_time",
    "drift_verdict",
    "engine_of",
    "facts",
    "generated_text",
    "header",
    "history_note",
    "note",
    "notebook_app",
    "notebook_tree",
    "observed_only_text",
    "open_drift",
    "open_drift_detail",
    "parse_when",
    "recent_changes",
    "reconciled_drift",
    "redactor_of",
    "require_tree",
    "snapshot_table",
    "snapshots_over_time",
    "style",
    "subtree_at",
    "summary",
    "summary_facts",
    "table",
    "time_to_reconcile",
    "verdict_banner",
    "watch_log",
]
