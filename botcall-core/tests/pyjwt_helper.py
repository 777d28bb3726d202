#!/usr/bin/env python3
"""PyJWT side of botcall-core/tests/pyjwt.rs (cross-implementation tests).

Reads a JSON list of requests on stdin and writes a JSON list of results, one
per request, on stdout. Needs PyJWT and cryptography: tests/setup makes
a venv with both. Exits non-zero (with the reason on stderr) if they are
missing or a request is malformed, so the Rust test fails rather than skips.

Requests ({"op": ...}):
  version                                 -> {"pyjwt", "cryptography"}
  sign      alg, key (JWK|null), claims, headers?
                                          -> {"token"}   (jwt.encode)
  hmac_raw  claims, headers?, secret_hex  -> {"token"}   (HS256 by hand with any
            bytes as the secret: PyJWT refuses PEM public keys as HMAC secrets,
            and forging with them is exactly the key-confusion attack)
  public    key (EC JWK)                  -> {"pem", "sec1_hex", "sec1_compressed_hex"}
  verify    alg, key (JWK), token, aud?, leeway?, require?, now? (PyJWT judges at `now`)
                                          -> {"ok": true, "claims", "header"} | {"ok": false, "error"}
  thumbprint jwk (EC)                     -> {"thumbprint"} (RFC 7638, computed here)
"""

import base64
import datetime
import hashlib
import hmac
import json
import sys

try:
    import cryptography
    import jwt
    from cryptography.hazmat.primitives import serialization
    from jwt.algorithms import ECAlgorithm, HMACAlgorithm
except ImportError as e:  # pragma: no cover - reported to the Rust test
    sys.stderr.write(f"pyjwt_helper: {e}; run tests/setup (PyJWT + cryptography)\n")
    sys.exit(3)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def key_from_jwk(jwk):
    text = json.dumps(jwk)
    if jwk["kty"] == "oct":
        return HMACAlgorithm.from_jwk(text)
    if jwk["kty"] == "EC":
        return ECAlgorithm.from_jwk(text)
    raise ValueError(f"unsupported kty {jwk['kty']}")


def public_of(jwk):
    key = key_from_jwk(jwk)
    return key.public_key() if hasattr(key, "public_key") else key


def op_version(_):
    return {"pyjwt": jwt.__version__, "cryptography": cryptography.__version__}


def op_sign(r):
    key = None if r["key"] is None else key_from_jwk(r["key"])
    token = jwt.encode(r["claims"], key, algorithm=r["alg"], headers=r.get("headers"))
    return {"token": token}


def op_hmac_raw(r):
    header = {"alg": "HS256", "typ": "JWT", **r.get("headers", {})}
    signing_input = b64u(compact(header)) + "." + b64u(compact(r["claims"]))
    tag = hmac.new(bytes.fromhex(r["secret_hex"]), signing_input.encode(), hashlib.sha256).digest()
    return {"token": signing_input + "." + b64u(tag)}


def op_public(r):
    pub = public_of(r["key"])
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    sec1 = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    comp = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    return {"pem": pem.decode(), "sec1_hex": sec1.hex(), "sec1_compressed_hex": comp.hex()}


class _FrozenClock(datetime.datetime):
    """PyJWT reads `datetime.now`; a verify request may fix that instant."""

    at = None

    @classmethod
    def now(cls, tz=None):
        if cls.at is None:
            return super().now(tz)
        return datetime.datetime.fromtimestamp(cls.at, tz)


def op_verify(r):
    _FrozenClock.at = r.get("now")
    jwt.api_jwt.datetime = _FrozenClock
    try:
        claims = jwt.decode(
            r["token"],
            public_of(r["key"]),
            algorithms=[r["alg"]],
            audience=r.get("aud"),
            leeway=r.get("leeway", 0),
            options={"require": r.get("require", [])},
        )
        return {"ok": True, "claims": claims, "header": jwt.get_unverified_header(r["token"])}
    except jwt.PyJWTError as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def op_thumbprint(r):
    jwk = r["jwk"]
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return {"thumbprint": b64u(hashlib.sha256(canonical.encode()).digest())}


OPS = {
    "version": op_version,
    "sign": op_sign,
    "hmac_raw": op_hmac_raw,
    "public": op_public,
    "verify": op_verify,
    "thumbprint": op_thumbprint,
}


def main():
    requests = json.load(sys.stdin)
    out = []
    for r in requests:
        op = OPS.get(r.get("op"))
        if op is None:
            sys.stderr.write(f"pyjwt_helper: unknown op in {r!r}\n")
            sys.exit(2)
        out.append(op(r))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
