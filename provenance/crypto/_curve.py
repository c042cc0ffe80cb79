"""SM2 recommended curve (GB/T 32918.5) and the signer identity hash Z (GB/T 32918.2 §5.5)."""

from __future__ import annotations

from provenance.crypto.sm3 import sm3
from provenance.errors import KeyInvalid

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

FIELD_SIZE = 32

# Default distinguishing identifier of GM/T 0009 (ASCII "1234567812345678"); OpenSSL 3.0 itself
# defaults to an empty ID, which is why every backend sets this explicitly.
DEFAULT_ID = b"1234567812345678"

# ENTL is a 16-bit count of ID *bits*.
MAX_ID_LEN = 0xFFFF // 8


def int_to_bytes(v: int) -> bytes:
    return v.to_bytes(FIELD_SIZE, "big")


def is_on_curve(x: int, y: int) -> bool:
    """True when (x, y) is an affine point of the SM2 curve (never the point at infinity)."""
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def check_point(x: int, y: int) -> None:
    if not is_on_curve(x, y):
        raise KeyInvalid("public key point is not on the SM2 curve")


def decode_point(data: bytes) -> tuple[int, int]:
    """SEC1 point octets (04||x||y, or compressed 02/03||x) to an affine point on the curve."""
    if len(data) == 2 * FIELD_SIZE + 1 and data[0] == 0x04:
        x = int.from_bytes(data[1 : 1 + FIELD_SIZE], "big")
        y = int.from_bytes(data[1 + FIELD_SIZE :], "big")
    elif len(data) == FIELD_SIZE + 1 and data[0] in (0x02, 0x03):
        x = int.from_bytes(data[1:], "big")
        if x >= P:
            raise KeyInvalid("compressed point x coordinate out of range")
        # P ≡ 3 (mod 4), so a square root is a power (SEC1 §2.3.4).
        rhs = (x * x * x + A * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if (y * y) % P != rhs:
            raise KeyInvalid("compressed point is not on the SM2 curve")
        if (y & 1) != (data[0] & 1):
            y = P - y
    else:
        raise KeyInvalid("public key is not an uncompressed or compressed SEC1 point")
    check_point(x, y)
    return x, y


def encode_point(x: int, y: int) -> bytes:
    return b"\x04" + int_to_bytes(x) + int_to_bytes(y)


def check_id(id: bytes) -> None:
    if len(id) > MAX_ID_LEN:
        raise ValueError(f"SM2 distinguishing ID longer than {MAX_ID_LEN} bytes")


def z_value(x: int, y: int, id: bytes = DEFAULT_ID) -> bytes:
    """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)."""
    check_id(id)
    entl = (len(id) * 8).to_bytes(2, "big")
    return sm3(entl + id + b"".join(int_to_bytes(v) for v in (A, B, GX, GY, x, y)))


def message_digest(x: int, y: int, message: bytes, id: bytes = DEFAULT_ID) -> bytes:
    """e = SM3(Z_A || M), the value SM2 signs."""
    return sm3(z_value(x, y, id) + message)
