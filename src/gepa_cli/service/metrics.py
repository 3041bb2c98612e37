"""``/metrics``: what an operator scrapes, in the Prometheus text format (prometheus_client).

Two kinds of numbers. The queue's (requests by status, workers alive and stale) are read
from the database at scrape time, so every service process reports the same, shared
queue. The rest are counters of what *this* process did: runs its workers finished, by
outcome; rollouts, proposals and recorded cost its runs added (per second:
``rate(gepa_service_rollouts_total[1m])``); leases it found expired and requeues; and
the latency of the requests it served, by route template.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gepa_cli.service.db import DatabaseUnavailableError
from gepa_cli.service.progress import FeedProgress

if TYPE_CHECKING:
    from gepa_cli.service.queue import RunQueue

PREFIX = "gepa_service"
CONTENT_TYPE = CONTENT_TYPE_LATEST


class QueueCollector(Collector):
    def __init__(self, queue: RunQueue, stale_after: float) -> None:
        self.queue = queue
        self.stale_after = stale_after

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 when the queue's database answered")
        try:
            counts = self.queue.counts()
            workers = self.queue.workers.list()
        except DatabaseUnavailableError:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        depth = GaugeMetricFamily(
            f"{PREFIX}_queue_requests", "Requests in the queue by status", labels=["status"]
        )
        for status, n in counts.items():
            depth.add_metric([status], float(n))
        yield depth
        alive = GaugeMetricFamily(
            f"{PREFIX}_workers", "Workers of every service process by liveness", labels=["state"]
        )
        stale = sum(1 for worker in workers if worker.stale(self.stale_after))
        alive.add_metric(["alive"], float(len(workers) - stale))
        alive.add_metric(["stale"], float(stale))
        yield alive


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs_finished = Counter(
            f"{PREFIX}_runs_finished",
            "Runs this process's workers saw end, by outcome (the request's next status)",
            ["outcome"],
            registry=r,
        )
        self.rollouts = Counter(
            f"{PREFIX}_rollouts", "Rollouts this process's runs counted", registry=r
        )
        self.proposals = Counter(
            f"{PREFIX}_proposals", "Proposer calls this process's runs made", registry=r
        )
        self.cost = Counter(
            f"{PREFIX}_cost_usd",
            "Recorded cost of this process's runs (as budgets count it; cache hits included)",
            registry=r,
        )
        self.lease_expiries = Counter(
            f"{PREFIX}_lease_expiries", "Expired leases this process took back", registry=r
        )
        self.requeues = Counter(
            f"{PREFIX}_requeues",
            "Requests this process gave back to the queue, by reason",
            ["reason"],
            registry=r,
        )
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to the response's headers, by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        for reason in ("expired", "shutdown"):
            self.requeues.labels(reason)

    def watch_queue(self, queue: RunQueue, stale_after: float) -> None:
        self.registry.register(QueueCollector(queue, stale_after))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RunMeter:
    """Adds to the counters what one execution of a run adds to its feed."""

    def __init__(self, progress: FeedProgress, metrics: ServiceMetrics) -> None:
        self.progress = progress
        self.metrics = metrics
        self.seen: tuple[int, int, float] | None = None

    def observe(self) -> None:
        budget = self.progress.update().budget
        rollouts = int((budget.get("rollouts") or {}).get("total", 0))
        now = (rollouts, int(budget.get("proposals") or 0), float(budget.get("cost_usd") or 0.0))
        seen, self.seen = self.seen, now
        # the first look is what earlier attempts did; a drop is a resume cutting the
        # feed back to its checkpoint: neither is this execution's work
        if seen is None or any(b < a for a, b in zip(seen, now, strict=True)):
            return
        self.metrics.rollouts.inc(now[0] - seen[0])
        self.metrics.proposals.inc(now[1] - seen[1])
        self.metrics.cost.inc(now[2] - seen[2])
