"""What `BuildService` is set up with: BuilderApp's traits (`builder/app.py`, where each one
has its help) as plain values, so the service can be made without the application."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServiceConfig:
    image_prefix: str
    push: bool
    max_concurrent: int = 2
    max_per_user: int = 1
    build_timeout: float = 3600
    silence_timeout: float = 600
    git_timeout: float = 30
    ref_resolver: str = "http"
    flush_interval: float = 0.02
    max_queued_per_user: int = 5
    queue_retry_after: int = 30
    max_log_bytes: int = 0
    max_log_lines: int = 0
    max_streams_per_user: int = 0
    replay_concurrency: int = 4
    replay_cache_bytes: int = 16 * 1024 * 1024
    rebuild_interval: float = 300
