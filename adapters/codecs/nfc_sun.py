"""NTAG 424 DNA "SUN" messages are verified as NXP AN12196 describes (AES mode): the session MAC
key is CMAC(K_SDMFileRead, SV2), SV2 = 3CC3 0001 0080 || UID || SDMReadCtr (3 bytes, LSB
first); the SDMMAC is the odd-indexed bytes of CMAC(session key, MAC input), the input being
empty when the tag is set up with SDMMACInputOffset = SDMMACOffset (the usual SUN URL). With
PICCData mirrored encrypted (`e=`/`picc_data=`), K_SDMMetaRead decrypts it (AES-CBC, zero IV)
to PICCDataTag || UID || SDMReadCtr. LRP mode and MACs over encrypted file data are not handled.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

_SV2_PREFIX = bytes.fromhex("3CC300010080")
_PICC_UID_MIRRORED, _PICC_CTR_MIRRORED = 0x80, 0x40


def aes_cmac(key: bytes, data: bytes) -> bytes:
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def sdm_session_mac_key(file_read_key: bytes, uid: bytes, counter: int) -> bytes:
    # 6 + 7 + 3 bytes: exactly one AES block, so no padding is needed
    sv2 = _SV2_PREFIX + uid + counter.to_bytes(3, "little")
    return aes_cmac(file_read_key, sv2)


def sdm_mac(file_read_key: bytes, uid: bytes, counter: int, mac_input: bytes = b"") -> bytes:
    """The 8-byte SDMMAC (MACt): the odd-indexed bytes of the 16-byte CMAC."""
    return aes_cmac(sdm_session_mac_key(file_read_key, uid, counter), mac_input)[1::2]


def decrypt_picc_data(meta_read_key: bytes, picc_data: bytes) -> tuple[bytes, int]:
    """(UID, SDMReadCtr) from encrypted PICCData. ValueError when it does not mirror both."""
    if len(picc_data) != 16:
        raise ValueError("must be 16 bytes (AES mode)")
    dec = Cipher(algorithms.AES(meta_read_key), modes.CBC(bytes(16))).decryptor()
    plain = dec.update(picc_data) + dec.finalize()
    tag = plain[0]
    if not (tag & _PICC_UID_MIRRORED and tag & _PICC_CTR_MIRRORED) or tag & 0x0F != 7:
        raise ValueError("does not decrypt to a 7-byte UID and a read counter (wrong key?)")
    return plain[1:8], int.from_bytes(plain[8:11], "little")


@dataclass(frozen=True, slots=True)
class SunMessage:
    cmac: bytes  # 8 bytes
    picc_data: bytes | None = None  # encrypted PICCData, or else:
    uid: bytes | None = None  # plain mirrored UID (7 bytes)
    counter: int | None = None  # plain mirrored SDMReadCtr


class TapRefused(Exception):
    """The tap is refused and nothing is stored: `status`, `field`, `reason` for the client."""

    def __init__(self, status: int, field: str, reason: str, outcome: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status, self.field, self.reason, self.outcome = status, field, reason, outcome


def verify_sun(
    file_key: bytes, meta_key: bytes | None, uid_expected: str | None, msg: SunMessage
) -> tuple[bytes, int]:
    """(UID, counter) of a SUN message whose CMAC verifies; TapRefused otherwise."""
    if msg.picc_data is not None:
        if meta_key is None:
            raise TapRefused(
                422, "sun.picc_data", "this tag has no meta-read key: send uid and ctr", "bad_sun"
            )
        try:
            uid, counter = decrypt_picc_data(meta_key, msg.picc_data)
        except ValueError as exc:
            raise TapRefused(403, "sun.picc_data", str(exc), "bad_cmac") from None
    elif msg.uid is not None and msg.counter is not None:
        uid, counter = msg.uid, msg.counter
    else:
        raise TapRefused(422, "sun", "needs picc_data, or uid and ctr", "bad_sun")
    if not hmac.compare_digest(sdm_mac(file_key, uid, counter), msg.cmac):
        raise TapRefused(403, "sun.cmac", "CMAC does not verify with this tag's key", "bad_cmac")
    if uid_expected is not None and uid.hex() != uid_expected:
        raise TapRefused(403, "sun.uid", "the UID is not this tag's", "bad_cmac")
    return uid, counter
