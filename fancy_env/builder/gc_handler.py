"""`POST api/gc` (admins) and the service-side retention schedule (`gc_interval`).

The retention run happens inside the build service, which knows the builds in progress and
owns the cache check's memory: a removed image is forgotten at once, in the same process.
`fancy-env gc` is a client of this endpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from .gc import Collector, GCError
from .handlers import BaseHandler


class GCHandler(BaseHandler):
    async def post(self) -> None:
        if not self.identity.admin:
            self.fail(403, "image retention needs an admin of the build service")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            self.fail(400, "the request body must be JSON: {dry_run?: true|false}")
        if not isinstance(body, dict) or set(body) - {"dry_run"}:
            self.fail(400, "the request body may only hold dry_run (true or false)", "dry_run")
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            self.fail(400, "dry_run must be true or false", "dry_run")
        collector: Collector = self.parts["collector"]
        try:
            report = await collector.run(dry_run=dry_run)
        except GCError as e:
            self.fail(503, f"image retention did not run: {e}")
        self.write_json(report.to_json())


def gc_schedule(collector: Any, interval: float, log: logging.Logger) -> asyncio.Task[None] | None:
    """Run retention every `interval` seconds (None when 0: off)."""
    if interval <= 0:
        return None

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                report = (await collector.run(dry_run=False)).to_json()
            except GCError as e:
                log.warning("image retention did not run: %s", e)
                continue
            except Exception:  # noqa: BLE001 - keep the schedule; the next run tries again
                log.exception("image retention failed")
                continue
            log.info(
                "image retention: removed %d image(s), %d bytes; %s%s",
                len(report["remove"]), report["bytes"], report["registry_gc"] or "no registry GC",
                f"; errors: {report['errors']}" if report["errors"] else "",
            )  # fmt: skip

    return asyncio.create_task(loop())
