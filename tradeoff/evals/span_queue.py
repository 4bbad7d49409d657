"""A span processor with a bounded queue and one exporting thread (evals/telemetry.py).

Imported only when tracing is on: it needs the OpenTelemetry SDK (`tradeoff[otel]`).
"""

from __future__ import annotations

import contextlib
import queue
import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["SpanQueue"]

QUEUE_SPANS = 4096  # finished spans waiting for export, at most
BATCH_SPANS = 512
BATCH_DELAY_S = 1.0  # a span waits at most this long for its batch to fill


class SpanQueue(SpanProcessor):
    """A span processor with a bounded queue and one exporting thread; it counts what it drops.

    The SDK's BatchSpanProcessor also bounds its queue, but does not say how much it dropped;
    here `exported` and `dropped` are plain counters a scrape can read.
    """

    def __init__(self, exporter: SpanExporter, capacity: int = QUEUE_SPANS) -> None:
        self.exporter = exporter
        self.spans: queue.Queue[ReadableSpan | None] = queue.Queue(capacity)
        self.exported = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="tradeoff-otel", daemon=True)
        self._thread.start()

    # -- the SpanProcessor interface -------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context or not span.context.trace_flags.sampled:
            return
        try:
            self.spans.put_nowait(span)
        except queue.Full:
            self.dropped += 1

    def shutdown(self, timeout_s: float = 2.0) -> None:
        """Export what is queued, for at most `timeout_s`; what is left then is dropped."""
        with contextlib.suppress(queue.Full):
            self.spans.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # -- the exporting thread --------------------------------------------------------------
    def _run(self) -> None:
        done = False
        while not done:
            batch: list[ReadableSpan] = []
            try:
                first = self.spans.get(timeout=BATCH_DELAY_S)
            except queue.Empty:
                continue
            if first is None:
                done = True
            else:
                batch.append(first)
            while len(batch) < BATCH_SPANS:
                try:
                    more = self.spans.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                    break
                batch.append(more)
            if not batch:
                continue
            try:
                ok = self.exporter.export(batch) == SpanExportResult.SUCCESS
            except Exception:  # a collector's failure is the collector's; never ours to raise
                ok = False
            if ok:
                self.exported += len(batch)
            else:
                self.dropped += len(batch)
