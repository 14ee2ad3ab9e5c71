"""Prometheus metrics of the build service (`GET metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BUILDS = Counter(
    "fancy_env_builds_total", "Build requests by outcome (built, failed, cancelled, cache_hit)",
    ["outcome"],
)  # fmt: skip
DURATION = Histogram(
    "fancy_env_build_duration_seconds", "Duration of builds that ran, by outcome", ["outcome"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 3600, float("inf")),
)  # fmt: skip
QUEUE_LENGTH = Gauge("fancy_env_build_queue_length", "Builds waiting for a slot")
RUNNING = Gauge("fancy_env_builds_running", "Builds running now")
CACHE_HITS = Counter("fancy_env_cache_hits_total", "Requests answered from the image cache")
DEDUPED = Counter(
    "fancy_env_builds_shared_total", "Requests that joined an identical build in progress"
)
EXECUTOR_RUNS = Counter("fancy_env_executor_runs_total", "Builds handed to the executor")
REFUSED = Counter(
    "fancy_env_requests_refused_total", "Requests refused by a limit (queue_share, streams)",
    ["limit"],
)  # fmt: skip
LOGS_TRUNCATED = Counter(
    "fancy_env_logs_truncated_total", "Builds whose stored log reached the cap and was cut"
)
