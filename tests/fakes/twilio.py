"""Twilio Programmable Messaging on loopback: Basic auth checked (401 / 20003 otherwise), the
form parsed, 201 with a `SM...` sid; scripted errors as Twilio sends them (JSON `code`,
`message`, `more_info`, `status`), 429 with Retry-After, 5xx, hangs and resets."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import parse_qs

from tests.fakes.http import Answer, LoopbackServer, Reply, Request, Script


def twilio_error(status: int, code: int, headers: dict[str, str] | None = None) -> Reply:
    body = {
        "code": code,
        "message": f"error {code}",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply.of_json(status, body, headers)


class FakeTwilio(LoopbackServer):
    def __init__(self, account_sid: str, auth_token: str, script: Script | None = None) -> None:
        super().__init__(self.answer)
        self.account_sid = account_sid
        self.auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.script = script or Script()
        self.sent: list[dict[str, str]] = []  # forms accepted (201)

    async def answer(self, req: Request) -> Answer:
        if req.headers.get("authorization") != self.auth:
            return twilio_error(401, 20003)
        if (
            req.method != "POST"
            or req.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        ):
            return twilio_error(404, 20404)
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if "To" not in form:
            return twilio_error(400, 21604)
        scripted = self.script.next()
        if scripted is not None:
            return scripted
        self.sent.append(form)
        sid = "SM" + uuid.uuid4().hex
        return Reply.of_json(201, {"sid": sid, "status": "queued", "to": form["To"]})
