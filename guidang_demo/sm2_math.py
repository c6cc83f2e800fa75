"""SM2 signing (GB/T 32918.2) in plain Python with a deterministic nonce, for the demo world.

The demo world must be byte-identical for one seed, and a library's SM2 signature draws a random
nonce; so the world's keys come from the seed and each nonce from the key and the message (as
RFC 6979 does for ECDSA). guidang itself verifies with gmssl-pyx, an independent implementation,
so every seal the world carries is also a test of both.
"""

from __future__ import annotations

import hashlib
import hmac

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = P - 3
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
ID = b"1234567812345678"

_Jacobian = tuple[int, int, int]


def _double(p: _Jacobian) -> _Jacobian:
    x, y, z = p
    if y == 0:
        return (0, 0, 0)
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P  # a = -3
    yy = y * y % P
    s = 4 * x * yy % P
    nx = (m * m - 2 * s) % P
    return (nx, (m * (s - nx) - 8 * yy * yy) % P, 2 * y * z % P)


def _add(p: _Jacobian, q: _Jacobian) -> _Jacobian:
    if p[2] == 0:
        return q
    if q[2] == 0:
        return p
    z1z1, z2z2 = p[2] * p[2] % P, q[2] * q[2] % P
    u1, u2 = p[0] * z2z2 % P, q[0] * z1z1 % P
    s1, s2 = p[1] * q[2] * z2z2 % P, q[1] * p[2] * z1z1 % P
    if u1 == u2:
        return _double(p) if s1 == s2 else (0, 0, 0)
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x = (r * r - hhh - 2 * v) % P
    return (x, (r * (v - x) - s1 * hhh) % P, h * p[2] * q[2] % P)


def _multiply(k: int, x: int = GX, y: int = GY) -> tuple[int, int]:
    result: _Jacobian = (0, 0, 0)
    point: _Jacobian = (x, y, 1)
    while k:
        if k & 1:
            result = _add(result, point)
        point = _double(point)
        k >>= 1
    zinv = pow(result[2], -1, P)
    return result[0] * zinv * zinv % P, result[1] * zinv * zinv * zinv % P


def keypair(seed: str) -> tuple[bytes, bytes]:
    """(public X‖Y, private d) derived from `seed`."""
    d = int.from_bytes(hashlib.sha256(b"guidang sm2 key " + seed.encode()).digest(), "big") % (N - 2) + 1
    x, y = _multiply(d)
    return x.to_bytes(32, "big") + y.to_bytes(32, "big"), d.to_bytes(32, "big")


def z_value(public: bytes) -> bytes:
    curve = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))
    return hashlib.new("sm3", (len(ID) * 8).to_bytes(2, "big") + ID + curve + public).digest()


def sign(private: bytes, public: bytes, message: bytes) -> bytes:
    """SM2-with-SM3 over `message` with the default ID; DER SEQUENCE{r, s}."""
    e = int.from_bytes(hashlib.new("sm3", z_value(public) + message).digest(), "big")
    d = int.from_bytes(private, "big")
    counter = 0
    while True:
        nonce = hmac.new(private, message + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        k = int.from_bytes(nonce, "big") % (N - 1) + 1
        counter += 1
        x1, _ = _multiply(k)
        r = (e + x1) % N
        if r == 0 or r + k == N:
            continue
        s = pow(1 + d, -1, N) * (k - r * d) % N
        if s:
            return _der_rs(r, s)


def _der_rs(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        raw = v.to_bytes((v.bit_length() + 8) // 8, "big")
        return bytes([0x02, len(raw)]) + raw
    body = integer(r) + integer(s)
    return bytes([0x30, len(body)]) + body
