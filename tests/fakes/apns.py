"""APNs on loopback over real HTTP/2 (h2c, prior knowledge: the client needs
`httpx.AsyncHTTPTransport(http1=False, http2=True)`; Apple's is TLS, the framing is the same).

Checks what Apple checks: the provider JWT (ES256, `kid`, `iss` = team, verified with the
public key), `apns-topic`, a 64-hex device token; answers 200 with the `apns-id`, 410
Unregistered for tokens in `unregistered`, 400 BadDeviceToken / MissingTopic, 403
InvalidProviderToken, or a scripted `(status, reason)`."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_TOKEN = re.compile(r"^/3/device/([0-9a-f]{64})$")


@dataclass
class Push:
    token: str
    headers: dict[str, str]
    body: bytes


class FakeApns:
    def __init__(self, team_id: str, key_id: str, topic: str) -> None:
        self.team_id, self.key_id, self.topic = team_id, key_id, topic
        key = ec.generate_private_key(ec.SECP256R1())
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_key = key.public_key()
        self.unregistered: set[str] = set()
        self.script: list[tuple[int, str]] = []  # answered first, in order
        self.received: list[Push] = []  # every request
        self.delivered: list[Push] = []  # 200s
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Transport] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeApns:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _H2(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._open):
            t.abort()

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        m = _TOKEN.match(headers.get(":path", ""))
        push = Push(m.group(1) if m else "", headers, body)
        self.received.append(push)
        if headers.get(":method") != "POST":
            return _reason(405, "MethodNotAllowed")
        try:
            token = headers.get("authorization", "").removeprefix("bearer ")
            if jwt.get_unverified_header(token).get("kid") != self.key_id:
                return _reason(403, "InvalidProviderToken")
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"])
        except jwt.PyJWTError:
            return _reason(403, "InvalidProviderToken")
        if claims.get("iss") != self.team_id or time.time() - claims["iat"] > 3600:
            return _reason(403, "ExpiredProviderToken")
        if headers.get("apns-topic") != self.topic:
            return _reason(400, "MissingTopic")
        if not m:
            return _reason(400, "BadDeviceToken")
        if self.script:
            status, reason = self.script.pop(0)
            return _reason(status, reason)
        if push.token in self.unregistered:
            return _reason(410, "Unregistered")
        self.delivered.append(push)
        return 200, {"apns-id": headers.get("apns-id") or str(uuid.uuid4())}, b""


def _reason(status: int, reason: str) -> tuple[int, dict[str, str], bytes]:
    body: dict[str, object] = {"reason": reason}
    if status == 410:
        body["timestamp"] = int(time.time() * 1000)
    return status, {"content-type": "application/json"}, json.dumps(body).encode()


class _H2(asyncio.Protocol):
    def __init__(self, fake: FakeApns) -> None:
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.fake = fake
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fake._open.add(transport)
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.fake._open.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, h2.events.ConnectionTerminated):
                self.transport.close()
                return
            if isinstance(ev, h2.events.RequestReceived):
                self.streams[ev.stream_id] = (dict(ev.headers), bytearray())  # type: ignore[arg-type]
            elif isinstance(ev, h2.events.DataReceived):
                self.streams[ev.stream_id][1].extend(ev.data)
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                headers, body = self.streams.pop(ev.stream_id)
                status, extra, out = self.fake.answer(headers, bytes(body))
                head = [(":status", str(status)), *extra.items()]
                head.append(("content-length", str(len(out))))
                self.conn.send_headers(ev.stream_id, head, end_stream=not out)
                if out:
                    self.conn.send_data(ev.stream_id, out, end_stream=True)
        self.transport.write(self.conn.data_to_send())
