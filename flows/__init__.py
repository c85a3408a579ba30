"""Prefect flows: wiring only. The library does the work; tasks do the I/O.

Each flow takes one Pydantic parameter model (see :mod:`zkdrift.flows.params`), so the
Prefect UI shows a form with descriptions, and fans out over trees with task
futures: one tree's failure is reported next to the others' results.
"""
