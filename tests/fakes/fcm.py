"""Google's OAuth2 token endpoint and FCM HTTP v1 on one loopback server.

- `POST /token`: checks the JWT-bearer grant: the RS256 assertion verified with the service
  account's public key, `aud` = the token URI, the FCM scope; answers an access token valid
  `ttl_s` (or a scripted error).
- `POST /v1/projects/{id}/messages:send`: a bearer issued here and not revoked, else 401
  UNAUTHENTICATED; tokens not in `registered` → 404 UNREGISTERED; otherwise a message name, or a
  scripted answer."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.http import Answer, LoopbackServer, Reply, Request, Script

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def fcm_error(status: int, state: str, code: str | None = None) -> Reply:
    err: dict[str, Any] = {"code": status, "message": state.lower(), "status": state}
    if code:
        err["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
        ]
    return Reply.of_json(status, {"error": err})


class FakeFcm(LoopbackServer):
    def __init__(self, project_id: str = "demo-app", ttl_s: int = 3600) -> None:
        super().__init__(self.answer)
        self.project_id = project_id
        self.ttl_s = ttl_s
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_key = key.public_key()
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.assertions: list[dict[str, Any]] = []
        self.registered: set[str] = set()
        self.token_script = Script()
        self.send_script = Script()
        self.messages: list[dict[str, Any]] = []
        self._n = itertools.count(1)

    def service_account(self) -> dict[str, str]:
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "kid-1",
            "private_key": self.private_pem,
            "client_email": f"relay@{self.project_id}.iam.gserviceaccount.com",
            "token_uri": f"{self.url}/token",
        }

    async def answer(self, req: Request) -> Answer:
        if req.path == "/token":
            return self._token(req)
        if req.path == f"/v1/projects/{self.project_id}/messages:send":
            return self._send(req)
        return fcm_error(404, "NOT_FOUND")

    def _token(self, req: Request) -> Answer:
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply.of_json(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key,
                algorithms=["RS256"],
                audience=f"{self.url}/token",
            )
        except jwt.PyJWTError:
            return Reply.of_json(400, {"error": "invalid_grant"})
        if claims.get("scope") != SCOPE or claims["exp"] - claims["iat"] > 3600:
            return Reply.of_json(400, {"error": "invalid_scope"})
        self.assertions.append(claims)
        scripted = self.token_script.next()
        if scripted is not None:
            return scripted
        token = f"ya29.fake-{next(self._n)}"
        self.issued.append(token)
        body = {"access_token": token, "expires_in": self.ttl_s, "token_type": "Bearer"}
        return Reply.of_json(200, body)

    def _send(self, req: Request) -> Answer:
        bearer = req.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued or bearer in self.revoked:
            return fcm_error(401, "UNAUTHENTICATED")
        msg = json.loads(req.body)["message"]
        if msg.get("token") not in self.registered:
            return fcm_error(404, "NOT_FOUND", "UNREGISTERED")
        scripted = self.send_script.next()
        if scripted is not None:
            return scripted
        self.messages.append(msg)
        return Reply.of_json(
            200, {"name": f"projects/{self.project_id}/messages/{len(self.messages)}"}
        )
