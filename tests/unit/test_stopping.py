"""SIGTERM handling: interrupt at once, or wait for the end of a graceful section."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

import pytest

from zkdrift import stopping


def sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def handled(body: Callable[[], None]) -> None:
    with stopping.sigterm_handled():
        body()


def test_sigterm_outside_a_graceful_section_raises_terminated_at_once() -> None:
    reached: list[str] = []

    def body() -> None:
        sigterm_self()
        reached.append("after the signal")

    with pytest.raises(stopping.Terminated):
        handled(body)
    assert reached == []


def test_sigterm_inside_a_graceful_section_is_held_until_the_section_ends() -> None:
    steps: list[str] = []

    def body() -> None:
        with stopping.graceful() as stop:
            assert not stop()
            sigterm_self()
            steps.append("kept going")
            assert stop()
            steps.append("saw the request")
        steps.append("after the section")  # not reached: the held signal is delivered

    with pytest.raises(stopping.Terminated):
        handled(body)
    assert steps == ["kept going", "saw the request"]


def test_nested_sections_deliver_the_signal_only_when_the_outermost_ends() -> None:
    steps: list[str] = []

    def body() -> None:
        with stopping.graceful():
            with stopping.graceful():
                sigterm_self()
            steps.append("inner section over, outer still running")
        steps.append("unreachable")

    with pytest.raises(stopping.Terminated):
        handled(body)
    assert steps == ["inner section over, outer still running"]


def test_a_section_in_another_thread_holds_the_signal_back_too() -> None:
    inside, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def worker() -> None:
        with stopping.graceful() as stop:
            inside.set()
            release.wait(10)
            seen.append(stop())

    def body() -> None:
        thread = threading.Thread(target=worker)
        thread.start()
        assert inside.wait(10)
        sigterm_self()  # handled in this (main) thread: held, since a section is open
        release.set()
        thread.join(10)  # the worker's section ends and delivers the signal to this thread

    with pytest.raises(stopping.Terminated):
        handled(body)
    assert seen == [True]


def test_the_handler_installed_before_runs_first_and_is_restored_afterwards() -> None:
    calls: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)
        raise RuntimeError("the previous handler's own way of stopping")

    saved = signal.signal(signal.SIGTERM, previous)
    try:
        with pytest.raises(RuntimeError, match="previous handler"):
            handled(sigterm_self)
        assert calls == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is previous
        assert not stopping.requested()
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_an_ignored_sigterm_stays_ignored() -> None:
    saved = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with stopping.sigterm_handled():
            sigterm_self()
            assert stopping.requested()  # noted, though nothing is interrupted
    finally:
        signal.signal(signal.SIGTERM, saved)
