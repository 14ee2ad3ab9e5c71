"""The sharing service against a real hub (mock single-user servers, no Docker)."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest
import requests

from fancy_env import tickets
from fancy_env.sharing import links as L
from fancy_env.sharing.store import LinkStore
from tests.support import db
from tests.support.hub import HubProcess
from tests.support.net import wait_for
from tests.support.sharing import TICKET_SECRET_HEX, Browser

PREFIX = "services/fancy-env/"


def create_link(hub: HubProcess, user: str, body: dict[str, Any]) -> requests.Response:
    token = hub.user_token(user)
    return requests.post(
        hub.url + PREFIX + "api/links",
        headers={"Authorization": f"token {token}"},
        json=body,
        timeout=30,
    )


def servers(hub: HubProcess, user: str) -> dict[str, Any]:
    return dict(hub.api("GET", f"/users/{user}").json().get("servers", {}))


def stop_all(hub: HubProcess, user: str) -> None:
    for name in servers(hub, user):
        path = f"/users/{user}/servers/{name}" if name else f"/users/{user}/server"
        hub.api("DELETE", path, json={"remove": bool(name)} if name else None)
    wait_for(lambda: not servers(hub, user), timeout=30, what=f"{user}'s servers to stop")


def store(hub: HubProcess) -> Any:
    """The hub's link store, called from these synchronous tests (db.Blocking)."""
    url = db.url_for(hub.state / "svc", "links.sqlite")
    return db.Blocking(lambda: LinkStore.open(url))


def test_create_stores_only_the_hash(sharing_hub: HubProcess) -> None:
    r = create_link(sharing_hub, "alice", {"profile": "small", "options": {"image": "py311"}})
    assert r.status_code == 201, r.text
    link = r.json()
    code = link["code"]
    assert L.is_well_formed_code(code) and len(code) >= 22
    assert link["url"] == f"/{PREFIX}l/{code}"
    dump = db.dump(db.url_for(sharing_hub.state / "svc", "links.sqlite"))
    assert code not in dump
    assert L.hash_code(code) in dump
    # the code is shown once: reading the link back never returns it
    token = sharing_hub.user_token("alice")
    again = requests.get(
        sharing_hub.url + PREFIX + f"api/links/{link['id']}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    ).json()
    assert "code" not in again and again["state"] == "active"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"profile": "small", "autostart": True}, 403, "one-click launch is turned off"),
        ({"profile": "small", "repo": "https://h/r.git"}, 400, "commit"),
        ({"profile": "nope"}, 403, "profile"),
        ({"profile": "small", "options": {"image": "gpu9"}}, 403, "Allowed: py311"),
        ({"profile": "small", "expires_in": 10}, 400, "at least 60"),
    ],
)
def test_create_refusals(
    sharing_hub: HubProcess, body: dict[str, Any], status: int, words: str
) -> None:
    r = create_link(sharing_hub, "bob", body)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]


def test_open_logged_out_then_login_and_launch(sharing_hub: HubProcess) -> None:
    link = create_link(
        sharing_hub,
        "alice",
        {"profile": "small", "options": {"image": "py311"}, "note": "our course"},
    ).json()
    # logged out: the service's OAuth sends the browser to the hub's login, keeping the link
    anon = requests.get(sharing_hub.url + link["url"][1:], timeout=30)
    assert "/hub/login" in anon.url and "oauth2" in requests.utils.unquote(anon.url)
    bob = Browser(sharing_hub, "bob")
    page = bob.get(link["url"])
    assert page.status_code == 200 and page.url.endswith(link["url"])
    for words in ("alice", "Small (small)", "Python 3.11 (py311)", "our course", ">Launch<"):
        assert words in page.text, words
    launched = bob.post_form(link["url"] + "/launch", {"action": "launch"})
    assert launched.status_code == 200, launched.text[-500:]
    wait_for(
        lambda: servers(sharing_hub, "bob").get("", {}).get("ready"),
        timeout=30,
        what="bob's server",
    )
    opts = servers(sharing_hub, "bob")[""]["user_options"]
    assert opts == {"profile": "small", "image": "py311"}
    assert store(sharing_hub).launches(link["id"]) == 1
    stop_all(sharing_hub, "bob")


def test_running_server_choices(sharing_hub: HubProcess) -> None:
    link = create_link(sharing_hub, "alice", {"profile": "small"}).json()
    bob = Browser(sharing_hub, "bob")
    sharing_hub.api("POST", "/users/bob/server", json={"user_options": {"profile": "small"}})
    wait_for(
        lambda: servers(sharing_hub, "bob").get("", {}).get("ready"),
        timeout=30,
        what="bob's server",
    )
    page = bob.get(link["url"])
    assert "already have a server running" in page.text
    for value in ('data-action="open"', 'value="replace"', 'value="named"'):
        assert value in page.text
    # open: a plain link to the running server
    assert 'href="/user/bob/"' in page.text
    # named: a second server next to the first
    bob.post_form(link["url"] + "/launch", {"action": "named"}, page=page.text)
    name = f"shared-{link['id'][:8]}"
    wait_for(
        lambda: servers(sharing_hub, "bob").get(name, {}).get("ready"),
        timeout=30,
        what="the named server",
    )
    assert servers(sharing_hub, "bob")[""]["ready"]
    # replace: the default server is stopped and started again from the link
    before = servers(sharing_hub, "bob")[""]["started"]
    page = bob.get(link["url"])
    bob.post_form(link["url"] + "/launch", {"action": "replace"}, page=page.text)
    wait_for(
        lambda: servers(sharing_hub, "bob").get("", {}).get("ready"),
        timeout=30,
        what="bob's replaced server",
    )
    assert servers(sharing_hub, "bob")[""]["started"] != before
    stop_all(sharing_hub, "bob")


def test_revoked_404_expired_410(sharing_hub: HubProcess) -> None:
    first = create_link(sharing_hub, "alice", {"profile": "small"}).json()
    second = create_link(sharing_hub, "alice", {"profile": "small"}).json()
    token = sharing_hub.user_token("alice")
    r = requests.delete(
        sharing_hub.url + PREFIX + f"api/links/{first['id']}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 204
    store(sharing_hub).update(second["id"], expires_at=time.time() - 5)
    bob = Browser(sharing_hub, "bob")
    gone = bob.get(first["url"])
    assert gone.status_code == 404 and "revoked" in gone.text
    expired = bob.get(second["url"])
    assert expired.status_code == 410 and "expired on" in expired.text
    made_up = bob.get(f"/{PREFIX}l/{L.new_code()}")
    assert made_up.status_code == 404
    assert bob.post_form(
        first["url"] + "/launch", {"action": "launch"}, page=gone.text
    ).status_code in (403, 404)


def test_recipient_permissions_apply(sharing_hub: HubProcess) -> None:
    gpu = create_link(sharing_hub, "alice", {"profile": "gpu"})
    assert gpu.status_code == 201, gpu.text  # alice is in gpu-users
    r_choice = create_link(sharing_hub, "alice", {"profile": "small", "options": {"image": "r"}})
    bob = Browser(sharing_hub, "bob")
    for link in (gpu.json(), r_choice.json()):
        page = bob.get(link["url"])
        assert page.status_code == 403, page.text[-300:]
        assert "may not use" in page.text
        refused = bob.post_form(link["url"] + "/launch", {"action": "launch"})
        assert refused.status_code in (403,)  # xsrf passes; the permission check refuses
    assert not servers(sharing_hub, "bob")


def test_owner_admin_and_others(sharing_hub: HubProcess) -> None:
    link = create_link(sharing_hub, "alice", {"profile": "small"}).json()
    url = sharing_hub.url + PREFIX + "api/links"

    def call(user: str, method: str, path: str = "", **kw: Any) -> requests.Response:
        token = sharing_hub.user_token(user)
        return requests.request(
            method, url + path, headers={"Authorization": f"token {token}"}, timeout=30, **kw
        )

    assert link["id"] not in [x["id"] for x in call("bob", "GET").json()["links"]]
    assert call("bob", "PATCH", f"/{link['id']}", json={"revoked": True}).status_code == 404
    assert call("bob", "GET", params={"all": "1"}).status_code == 403
    assert link["id"] in [
        x["id"] for x in call("admin", "GET", params={"all": "1"}).json()["links"]
    ]
    patched = call("alice", "PATCH", f"/{link['id']}", json={"expires_in": 120}).json()
    assert patched["expires_at"] == pytest.approx(time.time() + 120, abs=10)
    assert call("admin", "DELETE", f"/{link['id']}").status_code == 204
    assert call("alice", "GET", f"/{link['id']}").json()["state"] == "revoked"


def test_rate_limit(sharing_hub: HubProcess) -> None:
    """The service allows 15 links per hour per user (tests/sharing/conftest.py)."""
    statuses = [create_link(sharing_hub, "carol", {"profile": "small"}) for _ in range(16)]
    assert [r.status_code for r in statuses[:15]] == [201] * 15
    assert statuses[15].status_code == 429
    assert int(statuses[15].headers["Retry-After"]) > 0
    assert "too many links" in statuses[15].json()["message"]
    # other users are not affected
    assert create_link(sharing_hub, "bob", {"profile": "small"}).status_code == 201


def test_links_page_create_and_revoke(sharing_hub: HubProcess) -> None:
    alice = Browser(sharing_hub, "alice")
    page = alice.get(f"/{PREFIX}links")
    assert page.status_code == 200
    assert 'value="gpu"' in page.text  # alice may use the gpu profile: she is offered it
    created = alice.post_form(
        f"/{PREFIX}links",
        {
            "profile": "small",
            "profile-option-small--image": "r",
            "expires_in": "86400",
            "note": "R course",
        },
    )
    assert created.status_code == 200, created.text[-400:]
    url = re.search(r'id="new-link-url" readonly value="([^"]+)"', created.text)
    assert url, created.text[-800:]
    link = store(sharing_hub).by_code_hash(L.hash_code(url.group(1).rsplit("/", 1)[1]))
    assert link is not None and link.spec.options == {"image": "r"}
    assert link.expires_at == pytest.approx(time.time() + 86400, abs=30)
    # revoke from the page's own fetch(): cookie + X-XSRFToken
    r = alice.api("DELETE", f"/{PREFIX}api/links/{link.id}")
    assert r.status_code == 204, r.text
    # without the XSRF header, a cookie-authenticated change is refused
    other = create_link(sharing_hub, "alice", {"profile": "small"}).json()
    bare = alice.session.delete(sharing_hub.url + PREFIX + f"api/links/{other['id']}", timeout=30)
    assert bare.status_code == 403
    bob = Browser(sharing_hub, "bob")
    assert 'value="gpu"' not in bob.get(f"/{PREFIX}links").text  # bob is not in gpu-users


def test_form_ticket_creates_links(sharing_hub: HubProcess) -> None:
    """The spawn form authenticates with its ticket (X-Fancy-Env-Ticket), not a cookie."""
    url = sharing_hub.url + PREFIX + "api/links"
    secret = bytes.fromhex(TICKET_SECRET_HEX)
    ticket = tickets.mint(secret, "alice", 60)
    r = requests.post(url, headers={tickets.HEADER: ticket}, json={"profile": "small"}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == "alice"
    forged = tickets.mint(b"another secret", "alice", 60)
    r = requests.post(url, headers={tickets.HEADER: forged}, json={"profile": "small"}, timeout=30)
    assert r.status_code == 403 and "ticket" in r.json()["message"]
    expired = tickets.mint(secret, "alice", 1, now=time.time() - 10)
    r = requests.post(url, headers={tickets.HEADER: expired}, json={"profile": "small"}, timeout=30)
    assert r.status_code == 403
    # tickets open the JSON API only, never the pages
    page = requests.get(sharing_hub.url + PREFIX + "links", headers={tickets.HEADER: ticket},
                        allow_redirects=False, timeout=30)  # fmt: skip
    assert page.status_code == 302 and "oauth2/authorize" in page.headers["Location"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"profile": "gpu"}, "profile"),  # a profile bob may not use (gpu-users only)
        ({"profile": "small", "options": {"image": "r"}}, "Allowed: py311"),  # hidden choice
        ({"profile": "nope"}, "unknown profile"),
        ({"profile": "small", "options": {"tag--unlisted-choice": "latest; rm"}}, "v[0-9]+"),
    ],
)
def test_ticket_links_get_the_token_checks(
    sharing_hub: HubProcess, body: dict[str, Any], words: str
) -> None:
    """A link made with the form's ticket is refused exactly like one made with a token."""
    url = sharing_hub.url + PREFIX + "api/links"
    ticket = tickets.mint(bytes.fromhex(TICKET_SECRET_HEX), "bob", 60)
    by_ticket = requests.post(url, headers={tickets.HEADER: ticket}, json=body, timeout=30)
    by_token = create_link(sharing_hub, "bob", body)
    assert by_token.status_code == 403, by_token.text
    assert (by_ticket.status_code, by_ticket.json()) == (by_token.status_code, by_token.json())
    assert words in by_ticket.json()["message"]


def test_ticket_groups_count_like_the_hub_groups(sharing_hub: HubProcess) -> None:
    """alice is in gpu-users: the ticket the spawner mints for her carries the group."""
    url = sharing_hub.url + PREFIX + "api/links"
    secret = bytes.fromhex(TICKET_SECRET_HEX)
    with_group = tickets.mint(secret, "alice", 60, groups=["gpu-users"])
    r = requests.post(url, headers={tickets.HEADER: with_group}, json={"profile": "gpu"},
                      timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    no_scope = tickets.mint(secret, "alice", 60, scopes=(), groups=["gpu-users"])
    r = requests.post(url, headers={tickets.HEADER: no_scope}, json={"profile": "gpu"},
                      timeout=30)  # fmt: skip
    assert r.status_code == 403 and "scope" in r.json()["message"]


def test_share_needs_a_running_server(sharing_hub: HubProcess) -> None:
    """'Share this server' with nothing running (the server stopped while the page was
    open): a clear page, and no share code made."""
    sharing_hub.api("POST", "/users/carol/server", json={"user_options": {"profile": "small"}})
    wait_for(lambda: servers(sharing_hub, "carol").get("", {}).get("ready"), timeout=30,
             what="carol's server")  # fmt: skip
    carol = Browser(sharing_hub, "carol")
    page = carol.get(f"/{PREFIX}share")
    assert page.status_code == 200 and "Create share code" in page.text
    stop_all(sharing_hub, "carol")
    refused = carol.post_form(
        f"/{PREFIX}share", {"action": "create", "expires_in": "3600"}, page=page.text
    )
    assert refused.status_code == 409, refused.text[-400:]
    assert "not running" in refused.text and "/hub/home" in refused.text
    codes = sharing_hub.api("GET", "/share-codes/carol")
    assert codes.status_code == 200, codes.text
    assert codes.json()["items"] == []


def test_validator_refusal_at_launch_is_shown_as_is(sharing_hub: HubProcess) -> None:
    """The spawner refuses dave's start (403 with the field and what is allowed): the link
    page shows that message, not a missing servers!user scope."""
    link = create_link(sharing_hub, "alice", {"profile": "small"}).json()
    dave = Browser(sharing_hub, "dave")
    page = dave.get(link["url"])
    assert page.status_code == 200
    refused = dave.post_form(link["url"] + "/launch", {"action": "launch"}, page=page.text)
    assert refused.status_code == 403, refused.text[-400:]
    text = html.unescape(refused.text)
    assert "image: not for dave's course. Allowed: r." in text
    assert "servers!user" not in text
    stop_all(sharing_hub, "dave")


def test_links_page_form_carries_urlpath(sharing_hub: HubProcess) -> None:
    """The Environment links page's form field `urlpath`: kept (normalised), sent with the
    launch, used by "Open my running server"; a traversal is refused naming the field."""
    alice = Browser(sharing_hub, "alice")
    page = alice.get(f"/{PREFIX}links")
    fields = {"profile": "small", "urlpath": "lab/tree/notebooks/my intro.ipynb"}
    made = alice.post_form(f"/{PREFIX}links", fields, page=page.text)
    assert made.status_code == 200, made.text[-500:]
    link = store(sharing_hub).list(owner="alice", limit=1)[0]
    assert link.spec.urlpath == "lab/tree/notebooks/my%20intro.ipynb"
    bad = alice.post_form(f"/{PREFIX}links", {"profile": "small", "urlpath": "../../hub/admin"},
                          page=page.text)  # fmt: skip
    assert bad.status_code == 400 and "urlpath: " in bad.text
    url = html.unescape(re.findall(r'value="(http[^"]+/l/[^"]+)"', made.text)[0])
    bob = Browser(sharing_hub, "bob")
    shown = bob.get(url)
    assert "Opens after launch" in shown.text and "my%20intro.ipynb" in shown.text
    bob.post_form(url + "/launch", {"action": "launch"})
    wait_for(lambda: servers(sharing_hub, "bob").get("", {}).get("ready"), timeout=30,
             what="bob's server")  # fmt: skip
    opts = servers(sharing_hub, "bob")[""]["user_options"]
    assert opts["urlpath"] == "lab/tree/notebooks/my%20intro.ipynb"
    again = bob.get(url)
    assert "/user/bob/lab/tree/notebooks/my%20intro.ipynb" in again.text  # open it directly
    stop_all(sharing_hub, "bob")
