"""How a command that started processes stops: it stops them first, whatever stopped it.

Ctrl-C raises KeyboardInterrupt, but SIGTERM (`kill`, a service manager, CI cancelling a job)
and SIGHUP (the terminal closed) end Python at once, without `finally` blocks: a server it
started in a session of its own (vLLM, the code sandbox) or that outlives it (streamlit) would
be left running. Inside `stop_on_signals()` these signals raise `Terminated` instead, so the
same cleanup that serves Ctrl-C runs; `run_async` does the same for an asyncio command by
cancelling its main task, as asyncio does on Ctrl-C.

A signal the caller ignores stays ignored (`nohup` ignores SIGHUP on purpose), and only the main
thread can install handlers: elsewhere these helpers change nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

__all__ = ["Terminated", "run_async", "stop_on_signals"]

T = TypeVar("T")
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; like KeyboardInterrupt, not an error of the command's own.

    The CLI exits with 128 + the signal's number, as a shell reports a process it killed.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _catchable() -> list[signal.Signals]:
    """The signals to turn into Terminated here: not ignored, and only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return []
    return [s for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Raise Terminated in the main thread on SIGTERM or SIGHUP while the block runs.

    Only the first signal raises: a second one while the block cleans up is not allowed to cut
    the cleanup short (it is bounded: stopping a child ends in SIGKILL).
    """
    caught = _catchable()
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not fired:
            fired.append(signum)
            raise Terminated(signum)

    previous = {s: signal.signal(s, handler) for s in caught}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, where SIGTERM and SIGHUP cancel `main` as Ctrl-C does, then raise
    Terminated: the coroutine's own cancellation handling (flush, stop subprocesses) runs."""
    import asyncio  # here, so `tradeoff --help` does not load it

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        received: list[int] = []

        def cancel(signum: int) -> None:
            if not received:
                received.append(signum)
                task.cancel()

        caught = _catchable()
        previous = {s: signal.getsignal(s) for s in caught}
        for s in caught:
            loop.add_signal_handler(s, cancel, s)
        try:
            return await main
        except asyncio.CancelledError:
            if received:
                raise Terminated(received[0]) from None
            raise
        finally:
            for s, old in previous.items():
                loop.remove_signal_handler(s)  # (which leaves SIG_DFL behind)
                signal.signal(s, old)

    return asyncio.run(guarded())
