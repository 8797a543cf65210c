"""APNs on loopback as Apple serves it: TLS with ALPN "h2" (HTTP/2 negotiated in the handshake,
no prior knowledge), a self-signed certificate for 127.0.0.1 / localhost made when the fake
starts (`ca_file`; `client_ssl_context()` trusts it and nothing else), so a client's handshake,
ALPN and certificate verification run as against api.push.apple.com. The negotiated protocol
of every connection is in `alpn` (and on each `Push`); a connection that did not pick h2 is
closed, as the HTTP/2-only APNs would leave it nothing to talk to.

Checks what Apple checks: the provider JWT (ES256, `kid`, `iss` = team, verified with the
public key), `apns-topic`, a 64-hex device token; answers 200 with the `apns-id`, 410
Unregistered for tokens in `unregistered`, 400 BadDeviceToken / MissingTopic, 403
InvalidProviderToken, or a `Scripted` answer (status, reason, headers, or a raw body)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import re
import ssl
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_TOKEN = re.compile(r"^/3/device/([0-9a-f]{64})$")


@dataclass
class Push:
    token: str
    headers: dict[str, str]
    body: bytes
    alpn: str | None  # what the connection it came over negotiated


@dataclass
class Scripted:
    """An answer given before any other (after the JWT, topic and token checks pass)."""

    status: int
    reason: str = ""  # the JSON `{"reason": ...}` Apple sends
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a body that is not Apple's JSON, in place of the reason


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, its own issuer, and its key (PEM files).

    CA, key-usage and key-identifier extensions included so it is a valid trust anchor even
    under OpenSSL's strict X.509 checks (Python 3.13's default context)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake APNs (loopback)")])
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


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
        self.script: list[Scripted] = []  # answered first, in order
        self.received: list[Push] = []  # every request
        self.delivered: list[Push] = []  # 200s
        self.alpn: list[str | None] = []  # per TLS connection: the protocol it negotiated
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Transport] = set()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file = Path()
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """What a client verifying the fake needs: its certificate as the only trust anchor."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    async def __aenter__(self) -> FakeApns:
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-apns-")
        self.ca_file, key_file = write_self_signed(Path(self._tmp.name))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # as Apple: no TLS 1.0/1.1
        ctx.load_cert_chain(self.ca_file, key_file)
        ctx.set_alpn_protocols(["h2"])
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _H2(self), "127.0.0.1", 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None and self._tmp is not None
        self._server.close()
        for t in list(self._open):
            t.abort()
        self._tmp.cleanup()

    def answer(
        self, headers: dict[str, str], body: bytes, alpn: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        m = _TOKEN.match(headers.get(":path", ""))
        push = Push(m.group(1) if m else "", headers, body, alpn)
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
            s = self.script.pop(0)
            if s.raw is not None:
                return s.status, s.headers, s.raw
            status, head, out = _reason(s.status, s.reason)
            return status, head | s.headers, out
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
        self.alpn: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # over TLS asyncio calls this once the handshake is done: ALPN is settled
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        tls: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        self.alpn = tls.selected_alpn_protocol() if tls is not None else None
        self.fake.alpn.append(self.alpn)
        if self.alpn != "h2":
            transport.close()
            return
        self.fake._open.add(transport)
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.fake._open.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.alpn != "h2":
            return
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
                status, extra, out = self.fake.answer(headers, bytes(body), self.alpn)
                head = [(":status", str(status)), *extra.items()]
                head.append(("content-length", str(len(out))))
                self.conn.send_headers(ev.stream_id, head, end_stream=not out)
                if out:
                    self.conn.send_data(ev.stream_id, out, end_stream=True)
        self.transport.write(self.conn.data_to_send())
