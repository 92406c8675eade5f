"""Prometheus metrics, one registry per process (no global default registry).

Counters and histograms are updated where things happen; queue depth and executions by status are
read from the database at scrape time, so every API process reports the shared truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _DatabaseCollector(Collector):
    def __init__(self, depth: Callable[[], dict[str, int]], statuses: Callable[[], dict[str, int]],
                 comfyui: Callable[[], list[Any]]):
        self._depth = depth
        self._statuses = statuses
        self._comfyui = comfyui

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily("nodeloom_queue_depth", "Jobs in the queue by queue and state",
                                  labels=["queue", "state"])
        for key, n in self._depth().items():
            queue, _, state = key.partition(":")
            depth.add_metric([queue, state], n)
        yield depth
        ex = GaugeMetricFamily("nodeloom_executions", "Executions by status", labels=["status"])
        for status, n in self._statuses().items():
            ex.add_metric([status], n)
        yield ex
        servers = self._comfyui()
        healthy = GaugeMetricFamily("nodeloom_comfyui_healthy", "ComfyUI servers of the pool: 1 healthy, 0 not",
                                    labels=["server"])
        queued = GaugeMetricFamily("nodeloom_comfyui_queue", "ComfyUI servers' queues at the last check",
                                   labels=["server", "state"])
        types = GaugeMetricFamily("nodeloom_comfyui_node_types", "Node types each ComfyUI server offers",
                                  labels=["server"])
        for server in servers:
            healthy.add_metric([server.url], 1 if server.healthy else 0)
            queued.add_metric([server.url, "running"], server.queue_running)
            queued.add_metric([server.url, "pending"], server.queue_pending)
            types.add_metric([server.url], server.node_types)
        yield healthy
        yield queued
        yield types


class Metrics:
    def __init__(self, *, depth: Callable[[], dict[str, int]], statuses: Callable[[], dict[str, int]],
                 comfyui: Callable[[], list[Any]] = list):
        self.registry = CollectorRegistry(auto_describe=True)
        self.node_seconds = Histogram("nodeloom_node_duration_seconds", "Node run time by node type",
                                      ["node_type"], registry=self.registry,
                                      buckets=(0.005, 0.02, 0.1, 0.5, 1, 2.5, 5, 15, 60, 300, 900))
        self.node_results = Counter("nodeloom_nodes_total", "Nodes finished, by type and outcome",
                                    ["node_type", "outcome"], registry=self.registry)
        self.webhook_deliveries = Counter("nodeloom_webhook_deliveries_total", "Webhook delivery attempts",
                                          ["outcome"], registry=self.registry)
        self.rate_limit_refusals = Counter("nodeloom_rate_limit_refusals_total", "Requests refused by a limit",
                                           ["code"], registry=self.registry)
        self.http_requests = Counter("nodeloom_http_requests_total", "HTTP requests by method and status",
                                     ["method", "status"], registry=self.registry)
        self.registry.register(_DatabaseCollector(depth, statuses, comfyui))

    def render(self) -> bytes:
        return generate_latest(self.registry)
