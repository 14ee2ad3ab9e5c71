"""The one error family (pure): a refusal with an HTTP `status`, a `message` for people, the
input `field` at fault ("" when none) and extra response `headers` (e.g. Retry-After).

Every refusal the service's parts raise derives from `FancyError` (the build service's
`ServiceError`, the web input, link, repository, Binder, urlpath, validation and credential
errors). The one base handler (`fancy_env.web.handler`) turns it into the answer: JSON
`{"status", "message", "field"?}` for the API, the hub page with the message for HTML pages.
"""

from __future__ import annotations

from collections.abc import Mapping


class FancyError(Exception):
    """A refusal: `status`, `message`, `field`; `str()` is "field: message" (or message)."""

    title = ""  # a page heading, when the refusal is shown as a page

    def __init__(
        self,
        status: int,
        message: str,
        field: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.field = field
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(f"{field}: {message}" if field else message)

    @property
    def text(self) -> str:
        """The message with its field ("field: message"), as pages show it."""
        return str(self)


class PageError(FancyError):
    """A refusal shown as a page with a heading (`title`) and a plain-language message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(status, message)
        self.title = title
