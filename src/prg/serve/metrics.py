"""Prometheus metrics of one server (``GET /metrics``), on a registry of its own so that several apps in one
process (tests, benchmarks) do not share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServeMetrics"]

# seconds: from a fast health check to a long generation on a laptop CPU
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "prg_requests", "HTTP requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "prg_request_latency_seconds", "Time from request to response", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "prg_batch_size", "Requests answered by one batched generation", buckets=BATCH_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "prg_errors", "Refused or failed requests by error code", ["code"], registry=self.registry
        )
        self.queue_depth = Gauge("prg_queue_depth", "Requests waiting for the model", registry=self.registry)
        self.ready = Gauge("prg_model_ready", "1 once the model is loaded", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
