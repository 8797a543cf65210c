"""Twilio's webhook signature (`X-Twilio-Signature`; ../shared/PROTOCOLS.md): base64 of
HMAC-SHA1, keyed with the account's auth token, over the full URL Twilio called followed by the
POST parameters sorted by name, each name immediately followed by its value (a repeated name:
each of its values, sorted), as twilio-python's RequestValidator computes it.

Pure functions: no I/O. The URL must be the public one Twilio was given (scheme, host, port,
path and query exactly), not what a proxy rewrote it to."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"https": 443, "http": 80}


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    by_name: dict[str, list[str]] = {}
    for name, value in params:
        by_name.setdefault(name, []).append(value)
    data = url + "".join(
        name + value for name in sorted(by_name) for value in sorted(by_name[name])
    )
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, and with its scheme's default port added or removed: Twilio signs the
    URL as configured, which a proxy or a setting may spell either way (twilio-python tries
    both too)."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname
    if default is None or host is None:
        return [url]
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = userinfo + "@" if userinfo else ""
    try:
        port = parts.port
    except ValueError:  # a garbage port: only the URL as given can match
        return [url]
    if port == default:
        other = prefix + host
    elif port is None:
        other = f"{prefix}{host}:{default}"
    else:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=other))]


def is_valid(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None
) -> bool:
    """Constant-time comparison against every spelling of the URL; False without a token."""
    if not auth_token or not signature:
        return False
    pairs = list(params)
    given = signature.strip().encode()
    return any(
        hmac.compare_digest(compute_signature(auth_token, u, pairs).encode(), given)
        for u in url_variants(url)
    )
