"""The ``zkdrift`` command: thin, prints and asks; the library does the work."""

from zkdrift.cli.main import app, main, run_command

__all__ = ["app", "main", "run_command"]
