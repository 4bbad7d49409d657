"""A progress line on stderr: done/total, rate, ETA, running spend and errors.

On a terminal it redraws one line (at most 5 times a second); otherwise (CI, a pipe) it prints
a plain line every 10 seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Call `update()` as outcomes complete and `finish()` at the end."""

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        warmup: int = 1,
    ) -> None:
        self.total = total
        # No ETA before this many outcomes: with N calls in flight, the first answers arrive
        # together after one call's latency, and a rate from the first alone is N times low.
        self.warmup = max(1, min(warmup, total))
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self._last_draw = 0.0
        self.done = 0
        self.spend_usd = 0.0
        self.errors = 0

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        share = self.done / self.total if self.total else 1.0
        filled = int(share * 24)
        bar = "#" * filled + "-" * (24 - filled)
        eta_text = _clock(eta) if eta == eta and self.done >= self.warmup else "?"
        return (
            f"[{bar}] {self.done}/{self.total} {rate:.1f}/s ETA {eta_text} "
            f"spend ${self.spend_usd:.4f} errors {self.errors}"
        )

    def update(self, *, cost_usd: float = 0.0, error: bool = False) -> None:
        self.done += 1
        self.spend_usd += cost_usd
        self.errors += int(error)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < (0.2 if self.tty else 10.0) and self.done < self.total:
            return
        self._last_draw = now
        self.stream.write(("\r" + self.line()) if self.tty else self.line() + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line of its own (adaptive evaluation's rounds and drops), above the progress line."""
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + text + "\n\r" + self.line())
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
