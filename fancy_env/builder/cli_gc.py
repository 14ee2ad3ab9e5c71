"""`fancy-env gc [--dry-run] (--hub URL | --url SERVICE_URL) [--token T]`.

Asks the build service to apply its image-retention policy (`POST api/gc`, admin token from
`--token` or $JUPYTERHUB_API_TOKEN) and prints one line per image removed (or, with
--dry-run, that would be removed): image, bytes, reason; then the total. Exit status: 0 done,
1 the service could not run it or some removal failed, 2 usage or refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="fancy-env gc",
        description="Remove old images per the build service's retention policy "
        "(gc_keep_per_repo, gc_max_unused_days): from the local engine and the registry.",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would go; remove nothing")
    p.add_argument("--hub", default="", help="JupyterHub URL (with base_url)")
    p.add_argument("--service", default="fancy-env", help="build service name on the hub")
    p.add_argument("--url", default="", help="the build service's own URL (instead of --hub)")
    p.add_argument("--token", default="", help="admin API token (or $JUPYTERHUB_API_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the service's JSON report")
    return p.parse_args(argv)


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


async def _post(url: str, token: str, dry_run: bool) -> tuple[int, dict[str, Any]]:
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    body = json.dumps({"dry_run": dry_run})
    try:
        r = await AsyncHTTPClient().fetch(
            url, method="POST", headers=headers, body=body, request_timeout=3600
        )
    except HTTPClientError as e:
        text = e.response.body.decode("utf-8", "replace") if e.response else str(e)
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, {"message": text}
    return 200, json.loads(r.body)


def render(report: dict[str, Any]) -> str:
    verb = "would remove" if report["dry_run"] else "removed"
    lines = [f"{verb} {item['image']}  {human(item['bytes'])}  ({item['reason']})"
             for item in report["remove"]]  # fmt: skip
    lines.append(
        f"total: {verb} {len(report['remove'])} image(s), {human(report['bytes'])} "
        f"({report['bytes']} bytes); kept {len(report['keep'])}"
    )
    if report.get("registry_gc"):
        lines.append(f"registry garbage collection: {report['registry_gc']}")
    lines += [f"error: {e}" for e in report.get("errors", [])]
    return "\n".join(lines)


def main_gc(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    token = args.token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if bool(args.hub) == bool(args.url) or not token:
        print("fancy-env gc: give --hub URL or --url SERVICE_URL, and --token (an admin "
              "API token, or $JUPYTERHUB_API_TOKEN)", file=sys.stderr)  # fmt: skip
        return 2
    base = args.url if args.url else args.hub.rstrip("/") + f"/services/{args.service}/"
    code, report = asyncio.run(_post(base.rstrip("/") + "/api/gc", token, args.dry_run))
    if code != 200:
        print(f"fancy-env gc: {code}: {report.get('message', report)}", file=sys.stderr)
        return 2 if code in (400, 401, 403) else 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 1 if report.get("errors") else 0
