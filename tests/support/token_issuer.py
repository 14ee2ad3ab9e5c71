"""A small Docker Registry token issuer for tests (the token spec of registry/distribution).

`python -m tests.support.token_issuer --port P --key K --cert C --issuer I --service S
--user U --password-file F --log L` serves on 127.0.0.1:P:

- `GET /token?service=S&scope=repository:name:pull,push` with Basic auth U:password -> a JWT
  (RS256, the certificate in its `x5c` header, as docker-registry's `auth.token` verifies it)
  granting the requested actions (none for repositories under `denied/`); without auth -> a
  token granting nothing (like Docker Hub's anonymous tokens); a wrong password -> 401.
- `POST /token` with `grant_type=refresh_token&refresh_token=<identity token>` (the OAuth2
  form): the identity token is the password file's content reversed, for tests.

Every request appends one line to the log (`GET basic-ok`, `GET anonymous`, ...): tests count
token fetches with it. Run by `TokenRegistry` in tests/support/registry.py; the tokens are
signed with the test's own key, nothing here is a secret of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from tornado.web import Application, RequestHandler


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(key: rsa.RSAPrivateKey, cert_der: bytes, claims: dict[str, Any]) -> str:
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(cert_der).decode()]}
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    ).encode()
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode() + "." + b64url(signature)


def parse_scopes(values: list[str]) -> list[dict[str, Any]]:
    access = []
    for value in values:
        for scope in value.split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [] if name.startswith("denied/") else actions.split(",")
            access.append({"type": kind, "name": name, "actions": granted})
    return access


class TokenHandler(RequestHandler):
    def _note(self, line: str) -> None:
        with open(self.settings["log_path"], "a") as f:
            f.write(line + "\n")

    def _answer(self, scopes: list[str], granted: bool, subject: str) -> None:
        now = int(time.time())
        lifetime = self.settings["expires_in"]
        claims = {
            "iss": self.settings["issuer"], "sub": subject, "aud": self.settings["service"],
            "exp": now + lifetime, "nbf": now - 5, "iat": now, "jti": secrets.token_hex(8),
            "access": parse_scopes(scopes) if granted else [],
        }  # fmt: skip
        token = make_jwt(self.settings["key"], self.settings["cert_der"], claims)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.write({"token": token, "access_token": token, "expires_in": lifetime,
                    "issued_at": issued})  # fmt: skip

    def get(self) -> None:
        scopes = self.get_arguments("scope")
        header = self.request.headers.get("Authorization", "")
        if not header:
            self._note("GET anonymous " + " ".join(scopes))
            return self._answer(scopes, False, "")
        user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        if (user, password) != (self.settings["user"], self.settings["password"]):
            self._note("GET basic-refused")
            self.set_status(401)
            return self.write({"errors": [{"code": "UNAUTHORIZED", "message": "bad login"}]})
        self._note("GET basic-ok " + " ".join(scopes))
        self._answer(scopes, True, user)

    def post(self) -> None:
        grant = self.get_body_argument("grant_type", "")
        refresh = self.get_body_argument("refresh_token", "")
        scopes = self.get_body_arguments("scope")
        if grant != "refresh_token" or refresh != self.settings["password"][::-1]:
            self._note("POST refused")
            self.set_status(401)
            return self.write({"error": "invalid_grant"})
        self._note("POST refresh-ok " + " ".join(scopes))
        self._answer(scopes, True, self.settings["user"])


def make_app(args: argparse.Namespace) -> Application:
    key = serialization.load_pem_private_key(Path(args.key).read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cert = x509.load_pem_x509_certificate(Path(args.cert).read_bytes())
    return Application(
        [(r"/token", TokenHandler)], key=key,
        cert_der=cert.public_bytes(serialization.Encoding.DER), issuer=args.issuer,
        service=args.service, user=args.user,
        password=Path(args.password_file).read_text().strip(), log_path=args.log,
        expires_in=args.expires_in,
    )  # fmt: skip


async def serve(app: Application, port: int) -> None:
    app.listen(port, "127.0.0.1")
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("key", "cert", "issuer", "service", "user", "password-file", "log"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--expires-in", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(serve(make_app(args), args.port))


if __name__ == "__main__":
    main()
