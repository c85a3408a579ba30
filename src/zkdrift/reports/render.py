"""Rendering the report notebooks to one HTML file: papermill executes, nbconvert renders.

The notebooks (``notebooks/drift_report.ipynb`` and ``notebooks/history.ipynb``)
take the parameters ``tree``, ``since``, ``until``, ``database_url`` and
``secret_globs``. The database URL may carry a password: the executed
notebooks are never written to disk, the parameters papermill records are
dropped and the injected parameters cell is masked before rendering, and
the HTML leaves code out. Errors are rewritten so the password never shows.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import nbformat

from zkdrift.app import App
from zkdrift.errors import InvalidInputError, ZkDriftError
from zkdrift.model import slug
from zkdrift.reports.common import require_tree
from zkdrift.reports.window import When, describe_window, parse_when
from zkdrift.settings import Settings
from zkdrift.store.engine import safe_url, url_secrets

log = logging.getLogger(__name__)


class _AboveDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


# papermill lends its logger to the notebook client, whose DEBUG records
# print every kernel message: the injected parameters cell (database URL and
# password) among them. Whatever logging the process configures, they never pass.
logging.getLogger("papermill").addFilter(_AboveDebug())

NOTEBOOKS = ("drift_report.ipynb", "history.ipynb")
KERNEL_NAME = "python3"
# Seconds a notebook cell may run; a report over a large history takes a few.
CELL_TIMEOUT = 600


class ReportError(ZkDriftError):
    """A report notebook could not be found or failed to execute."""


def notebooks_dir() -> Path:
    """The report notebooks, shipped inside the package (``zkdrift/reports/notebooks``)."""
    directory = Path(str(resources.files("zkdrift.reports") / "notebooks"))
    missing = [nb for nb in NOTEBOOKS if not (directory / nb).is_file()]
    if missing:  # pragma: no cover - a broken installation
        raise ReportError(f"the report notebooks {', '.join(missing)} are missing from {directory}")
    return directory


def report_path(settings: Settings, tree: str) -> Path:
    """Where a tree's latest HTML report lives: ``<ZKDRIFT_HOME>/reports/<tree>.html``,
    the tree name made safe for a file name. The CLI and the flows both write here."""
    return settings.reports_dir / f"{slug(tree)}.html"


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """The kernel to execute with; registers this interpreter's ipykernel when missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        log.info("registering the %s kernel in %s", name, sys.prefix)
        install(kernel_name=name, prefix=sys.prefix)
    return name


def _secrets_of(database_url: str) -> list[str]:
    if not database_url:
        return []
    return [database_url, *url_secrets(database_url)]


def _scrub(text: str, secrets: Sequence[str], replacement: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, replacement)
    return text


def _iso(value: When) -> str | None:
    parsed = parse_when(value)
    return None if parsed is None else parsed.isoformat()


def _kernel_manager(cwd: Path, stderr_path: Path) -> type[Any]:
    """A kernel manager whose kernel runs in ``cwd`` (without the parent changing
    directory, which papermill's own ``cwd`` does process-wide) and writes its
    stderr (transport warnings, shutdown chatter) to ``stderr_path`` instead of
    the user's terminal."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            with stderr_path.open("ab") as sink:
                kw.setdefault("stderr", sink)
                kw.setdefault("cwd", str(cwd))
                await super().start_kernel(**kw)

    return QuietKernelManager


def execute_notebook(path: Path, parameters: dict[str, Any], *, cwd: Path) -> Any:
    """Run one notebook with papermill in memory (nothing written) and return it."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    secrets = _secrets_of(str(parameters.get("database_url") or ""))
    kernel_log = cwd / f"{path.stem}.kernel.log"
    try:
        return papermill.execute_notebook(
            str(path),
            None,
            parameters=parameters,
            kernel_name=ensure_kernel(),
            progress_bar=False,
            execution_timeout=CELL_TIMEOUT,
            kernel_manager_class=_kernel_manager(cwd, kernel_log),
        )
    except PapermillExecutionError as exc:
        message = _scrub(f"{exc.ename}: {exc.evalue}", secrets, "***")
        raise ReportError(
            f"report notebook {path.name} failed in cell {exc.exec_count}: {message}"
        ) from None
    except Exception as exc:  # the kernel died or never started: say why
        tail = kernel_log.read_text(errors="replace")[-2000:] if kernel_log.exists() else ""
        message = _scrub(f"{type(exc).__name__}: {exc}\n{tail}".strip(), secrets, "***")
        raise ReportError(f"report notebook {path.name} could not run: {message}") from None


def _masked(nb: Any, display_url: str) -> Any:
    """Drop what papermill recorded of the parameters; mask the injected cell's URL."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = "\n".join(
                f"database_url = {display_url!r}" if line.startswith("database_url") else line
                for line in cell.source.splitlines()
            )
    return nb


# Cells tagged ``notebook-only`` (how to use a notebook opened by hand) never reach
# the report; cells tagged ``standalone`` (a notebook's own title and summary) only
# from the first notebook: the report has one title and one summary.
NOTEBOOK_ONLY = "notebook-only"
STANDALONE = "standalone"


def _kept(cell: Any, first: bool) -> bool:
    tags = set(cell.get("metadata", {}).get("tags", []))
    return NOTEBOOK_ONLY not in tags and (first or STANDALONE not in tags)


def merge(notebooks: Sequence[Any]) -> Any:
    """One notebook holding the cells of ``notebooks`` in order, without the cells
    meant for a notebook on its own (see :data:`NOTEBOOK_ONLY`, :data:`STANDALONE`)."""
    merged = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    merged.metadata = notebooks[0].metadata
    for n, nb in enumerate(notebooks):
        for cell in nb.cells:
            if not _kept(cell, first=n == 0):
                continue
            cell["id"] = f"nb{n}-{cell.get('id', len(merged.cells))}"  # ids must stay unique
            merged.cells.append(cell)
    return merged


def to_html(nb: Any, title: str) -> str:
    """The notebook as a self-contained HTML page without code (figures inlined)."""
    from nbconvert import HTMLExporter

    # nbconvert warns that figures lack alt text (it supplies a generic one): not news.
    quiet = logging.getLogger(f"{__name__}.nbconvert")
    quiet.setLevel(logging.ERROR)
    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        log=quiet, exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _resources = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return str(body)


def render_report(
    app: App,
    name: str,
    *,
    since: When = None,
    until: When = None,
    output: Path,
) -> Path:
    """Execute the drift and history notebooks for tree ``name`` and write one HTML report.

    ``since``/``until`` bound the window (datetimes, ISO strings or ages like
    ``7d``). Returns ``output``. Raises :class:`ReportError` when a notebook
    fails, with any database password masked.
    """
    tree = require_tree(app, name)  # fail fast on an unknown tree, before any kernel
    lo, hi = parse_when(since), parse_when(until)
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidInputError(
            f"the report window is empty: its end ({hi:%Y-%m-%d %H:%M}) is not after "
            f"its start ({lo:%Y-%m-%d %H:%M})"
        )
    output = Path(output)
    try:  # an output that cannot be written fails before any kernel starts
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {output}: {exc.strerror or exc}") from None
    database_url = app.settings.database_url_value
    parameters = {
        "tree": tree,
        "since": _iso(since),
        "until": _iso(until),
        "database_url": database_url,
        "secret_globs": list(app.settings.secret_globs) or None,
    }
    directory = notebooks_dir()
    log.info("executing %s for %s", ", ".join(NOTEBOOKS), tree)
    # Import (and find the kernel) once, here: lazy imports racing in threads break.
    import papermill  # noqa: F401

    ensure_kernel()
    with (
        tempfile.TemporaryDirectory(prefix="zkdrift-report-") as scratch,
        ThreadPoolExecutor(max_workers=len(NOTEBOOKS)) as pool,
    ):
        # Each notebook runs in its own kernel process: side by side, the report
        # costs one kernel start-up instead of two.
        futures = [
            pool.submit(execute_notebook, directory / nb, parameters, cwd=Path(scratch))
            for nb in NOTEBOOKS
        ]
        executed = [_masked(f.result(), safe_url(database_url)) for f in futures]
    title = f"zkdrift report: {tree} ({describe_window(since, until)})"
    # Belt and braces: the URL reaches no output by construction; never let it through.
    html = _scrub(to_html(merge(executed), title), [database_url], safe_url(database_url))
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write the report to {output}: {exc.strerror or exc}") from None
    log.info("report for %s written to %s", tree, output)
    return output


__all__ = ["ReportError", "ensure_kernel", "notebooks_dir", "render_report", "report_path"]
