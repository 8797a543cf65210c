"""A Standard Webhooks receiver on loopback: checks the signature independently of our signer
(the base64 key after `whsec_`, HMAC-SHA256 over "{id}.{timestamp}.{body}", any of the
space-separated `v1,` signatures, a 5-minute timestamp tolerance), answers 401 to a bad one,
de-duplicates on `webhook-id` as a receiver should, and replies from a script."""

from __future__ import annotations

import asyncio
import base64
import hmac
import time

from tests.fakes.http import Answer, LoopbackServer, Reply, Request, Script


class FakeReceiver(LoopbackServer):
    def __init__(self, secret: str, script: Script | None = None) -> None:
        super().__init__(self.answer)
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.script = script or Script()
        self.bad_signatures = 0
        self.delivered: dict[str, Request] = {}  # webhook-id -> first verified request
        self.hold: asyncio.Event | None = None  # set: the next answer waits for it
        self.held = asyncio.Event()  # a request is being held

    def verified(self, req: Request) -> bool:
        try:
            msg_id = req.headers["webhook-id"]
            ts = req.headers["webhook-timestamp"]
            sigs = req.headers["webhook-signature"].split(" ")
        except KeyError:
            return False
        if abs(time.time() - int(ts)) > 300:
            return False
        mac = hmac.new(self.key, msg_id.encode() + b"." + ts.encode() + b"." + req.body, "sha256")
        expected = base64.b64encode(mac.digest()).decode()
        return any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected) for s in sigs)

    async def answer(self, req: Request) -> Answer:
        if not self.verified(req):
            self.bad_signatures += 1
            return Reply.of_json(401, {"error": "bad signature"})
        if self.hold is not None:
            gate, self.hold = self.hold, None
            self.held.set()
            await gate.wait()
        scripted = self.script.next()
        if scripted is not None:
            return scripted
        self.delivered.setdefault(req.headers["webhook-id"], req)
        return Reply(204)
