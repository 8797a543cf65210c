"""Twilio's request signature: the worked example of Twilio's security guide (a known answer
computed by Twilio, not by this code), the sort order, repeated parameters, the default-port
spellings, and refusals (tampered values, another URL, another token, no signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from adapters.delivery.twilio_signature import compute_signature, is_valid, url_variants

# https://www.twilio.com/docs/usage/webhooks/webhooks-security ("Validating signatures")
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = [
    ("To", "+18005551212"),  # out of order on purpose: the signature sorts by name
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+12349013030"),
    ("Caller", "+12349013030"),
]
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_documented_known_answer() -> None:
    assert compute_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert is_valid(DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_the_string_signed_is_url_then_sorted_name_value_pairs() -> None:
    data = "https://e.test/cbA1B2"  # A < B, each name then its value, no separator
    mac = base64.b64encode(hmac.new(b"tok", data.encode(), hashlib.sha1).digest()).decode()
    assert compute_signature("tok", "https://e.test/cb", [("B", "2"), ("A", "1")]) == mac


def test_a_repeated_name_signs_each_value_sorted() -> None:
    a = compute_signature("tok", "https://e.test/cb", [("M", "b"), ("M", "a")])
    b = compute_signature("tok", "https://e.test/cb", [("M", "a"), ("M", "b")])
    data = "https://e.test/cbMaMb"
    mac = base64.b64encode(hmac.new(b"tok", data.encode(), hashlib.sha1).digest()).decode()
    assert a == b == mac


def test_non_ascii_values_are_signed_as_utf8() -> None:
    sig = compute_signature("tok", "https://e.test/in", [("Body", "ARRÊT")])
    data = "https://e.test/inBodyARRÊT".encode()
    assert sig == base64.b64encode(hmac.new(b"tok", data, hashlib.sha1).digest()).decode()


def test_refusals() -> None:
    tampered = [(k, "9999" if k == "Digits" else v) for k, v in DOC_PARAMS]
    assert not is_valid(DOC_TOKEN, DOC_URL, tampered, DOC_SIGNATURE)
    assert not is_valid(DOC_TOKEN, DOC_URL.replace("bar=2", "bar=3"), DOC_PARAMS, DOC_SIGNATURE)
    assert not is_valid(DOC_TOKEN, DOC_URL.replace("https", "http"), DOC_PARAMS, DOC_SIGNATURE)
    assert not is_valid("54321", DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    assert not is_valid(DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE[:-2])
    assert not is_valid(DOC_TOKEN, DOC_URL, DOC_PARAMS, None)
    assert not is_valid(DOC_TOKEN, DOC_URL, DOC_PARAMS, "")
    assert not is_valid("", DOC_URL, DOC_PARAMS, DOC_SIGNATURE)  # no token: never valid
    assert not is_valid(DOC_TOKEN, DOC_URL, [*DOC_PARAMS, ("Extra", "1")], DOC_SIGNATURE)


def test_default_port_spellings_are_equivalent() -> None:
    with_port = DOC_URL.replace("mycompany.com", "mycompany.com:443")
    assert url_variants(DOC_URL) == [DOC_URL, with_port]
    assert url_variants(with_port) == [with_port, DOC_URL]
    assert is_valid(DOC_TOKEN, with_port, DOC_PARAMS, DOC_SIGNATURE)
    # another port is another URL
    other = DOC_URL.replace("mycompany.com", "mycompany.com:8443")
    assert url_variants(other) == [other]
    assert not is_valid(DOC_TOKEN, other, DOC_PARAMS, DOC_SIGNATURE)
    assert url_variants("https://h:bad/x") == ["https://h:bad/x"]
    assert url_variants("ftp://h/x") == ["ftp://h/x"]
    assert url_variants("http://[::1]/x") == ["http://[::1]/x", "http://[::1]:80/x"]
