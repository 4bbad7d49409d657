"""Prometheus metrics, written in the text exposition format (version 0.0.4) by hand.

Updated only from the event loop's thread, so plain dicts suffice; a scrape reads them there too.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LabelKey = tuple[tuple[str, str], ...]


def labels(key: LabelKey) -> str:
    """`{k="v",...}` for a label key (values escaped); "" for no labels."""
    parts = [f'{k}="{_escape(v)}"' for k, v in key]
    return "{" + ",".join(parts) + "}" if parts else ""


def family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[LabelKey, float]]
) -> list[str]:
    """One metric family in the text format: its HELP and TYPE lines, then a line per sample.

    Every hand-written renderer (the collectors on `Metrics.collectors`) goes through here, so
    escaping and the line format live in one place.
    """
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels(key)} {value}" for key, value in samples]
    return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Histograms:
    """Latency histograms of one family, one per label set (cumulative buckets when rendered)."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help_text = name, help_text
        self.counts: dict[LabelKey, list[int]] = {}
        self.sums: dict[LabelKey, float] = {}

    def observe(self, key: LabelKey, seconds: float) -> None:
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.sums[key] = 0.0
        counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[key] += seconds

    def render(self) -> list[str]:
        lines = family(self.name, "histogram", self.help_text, [])
        bounds = (*LATENCY_BUCKETS, float("inf"))
        for key in sorted(self.counts):
            running = 0
            for bound, count in zip(bounds, self.counts[key], strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f"{self.name}_bucket{labels((*key, ('le', le)))} {running}")
            lines.append(f"{self.name}_sum{labels(key)} {self.sums[key]}")
            lines.append(f"{self.name}_count{labels(key)} {running}")
        return lines


class Metrics:
    """The proxy's counters and its latency histograms."""

    def __init__(self) -> None:
        self.requests: Counter[LabelKey] = Counter()
        self.cost: dict[LabelKey, float] = {}
        self.attempts: Counter[LabelKey] = Counter()
        self.fallbacks: Counter[LabelKey] = Counter()
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.upstream = Histograms(
            "tradeoff_upstream_duration_seconds",
            "Time of one upstream attempt (a stream's: until its first event), by model.",
        )
        self.first_token = Histograms(
            "tradeoff_time_to_first_token_seconds",
            "Time from request to the first streamed event, by model and API.",
        )
        self.overhead = Histograms(
            "tradeoff_proxy_overhead_seconds",
            "Time the proxy itself added: to the answer (or a stream's first event) beyond "
            "the upstream attempts' time, by API.",
        )
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.collectors: list[Callable[[], list[str]]] = []  # more families, already rendered
        self.refreshers: list[Callable[[], None]] = []  # blocking reads run before a scrape

    def observe_request(
        self,
        *,
        policy: str | None,
        model: str | None,
        status: int,
        stream: bool,
        latency_s: float,
        cost_usd: float | None,
        protocol: str = "chat",
    ) -> None:
        key = (
            ("policy", policy or ""),
            ("model", model or ""),
            ("status", str(status)),
            ("stream", "true" if stream else "false"),
            ("protocol", protocol),
        )
        self.requests[key] += 1
        self.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS, latency_s)] += 1
        self.latency_sum += latency_s
        self.latency_count += 1
        if cost_usd is not None and model:
            key_cost = (("model", model),)
            self.cost[key_cost] = self.cost.get(key_cost, 0.0) + cost_usd

    def observe_attempt(self, model: str, ok: bool, seconds: float | None = None) -> None:
        self.attempts[(("model", model), ("outcome", "ok" if ok else "error"))] += 1
        if seconds is not None:
            self.upstream.observe((("model", model),), seconds)

    def observe_timing(
        self, *, model: str | None, protocol: str, ttft_s: float | None, overhead_s: float | None
    ) -> None:
        """A finished request's time to first token (streams) and the proxy's own share."""
        if ttft_s is not None and model:
            self.first_token.observe((("model", model), ("protocol", protocol)), ttft_s)
        if overhead_s is not None:
            self.overhead.observe((("protocol", protocol),), max(0.0, overhead_s))

    def observe_fallback(self, policy: str | None, count: int) -> None:
        if count:
            self.fallbacks[(("policy", policy or ""),)] += count

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        def counter(name: str, help_text: str, values: Mapping[LabelKey, float]) -> list[str]:
            return family(name, "counter", help_text, sorted(values.items()))

        lines = [
            *counter("tradeoff_requests_total", "Requests answered, by outcome and API.",
                     self.requests),
            *counter("tradeoff_cost_usd_total", "Upstream cost in USD, by model.", self.cost),
            *counter("tradeoff_upstream_attempts_total", "Calls to upstream models.",
                     self.attempts),
            *counter("tradeoff_fallbacks_total", "Fallbacks to a later model.", self.fallbacks),
        ]  # fmt: skip
        lines += self._histogram("tradeoff_request_duration_seconds")
        for histograms in (self.upstream, self.first_token, self.overhead):
            lines += histograms.render()
        for gauge_name, (help_text, read) in sorted(self.gauges.items()):
            lines += family(gauge_name, "gauge", help_text, [((), read())])
        for collect in self.collectors:
            lines.extend(collect())
        return "\n".join(lines) + "\n"

    def _histogram(self, name: str) -> list[str]:
        """The latency histogram: cumulative buckets (with `le` labels), sum and count."""
        lines = family(name, "histogram", "Time from request to the last byte of the response.", [])
        running = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.bucket_counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f"{name}_bucket{labels((('le', le),))} {running}")
        lines.append(f"{name}_sum {self.latency_sum}")
        lines.append(f"{name}_count {self.latency_count}")
        return lines
