"""Reports: tidy pandas DataFrames straight from the store, secrets redacted,
and the HTML report the notebooks render.

- :mod:`.window`: report windows (``since``/``until``) in words and as datetimes;
- :mod:`.common`: the data source, the tree and the notebook's App;
- :mod:`.history`: snapshots, changes and churn;
- :mod:`.drift`: drift over time, open drift, time to reconcile, the apply audit;
- :mod:`.render`: executing the notebooks into one HTML page (imported on demand:
  it pulls in papermill and nbconvert).

The notebooks use this package as ``from zkdrift import reports``.
"""

from zkdrift.reports.common import (
    Source,
    database_label,
    default_tree,
    engine_of,
    notebook_app,
    redactor_of,
    require_tree,
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
)
from zkdrift.reports.window import When, describe_window, parse_when

__all__ = [
    "MAX_VALUE_CHARS",
    "Source",
    "When",
    "apply_audit",
    "change_log",
    "churn_by_path",
    "churn_by_subtree",
    "database_label",
    "default_tree",
    "describe_window",
    "drift_over_time",
    "engine_of",
    "history_note",
    "notebook_app",
    "open_drift",
    "parse_when",
    "redactor_of",
    "require_tree",
    "snapshots_over_time",
    "subtree_at",
    "summary",
    "time_to_reconcile",
]
