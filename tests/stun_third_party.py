#!/usr/bin/env python3
"""Checks botcalld's STUN responder with a third-party STUN codec.

Usage: stun_third_party.py HOST PORT

Builds and parses messages with aioice's `aioice.stun` (the ICE library
behind aiortc), so the check does not share code or assumptions with the
Rust responder. Tested with aioice 0.13.0 (`pip install aioice==0.13.0`).

Checks, over UDP to HOST:PORT:
  1. A Binding request (with SOFTWARE and FINGERPRINT) gets a Binding success
     response with the same transaction id, a FINGERPRINT that verifies
     (checked by aioice and again here by hand), SOFTWARE "botcalld", and an
     XOR-MAPPED-ADDRESS equal to this client's own socket address.
  2. Garbage and a Binding indication get no reply: they are sent first, and
     the next reply must belong to a request sent after them.
  3. A request with CHANGE-REQUEST (RFC 5780, not supported) gets a 420
     Unknown Attribute error response.

Exits 0 when every check passes, 1 with a message otherwise. Meant for
loopback: HOST should be 127.0.0.1, ::1 or another address on this machine.
"""

import binascii
import ipaddress
import socket
import struct
import sys

TIMEOUT_S = 1.0
ATTEMPTS = 3
FINGERPRINT_XOR = 0x5354554E
EXPECTED_SOFTWARE = "botcalld"


class CheckFailed(Exception):
    pass


def check(cond, message):
    if not cond:
        raise CheckFailed(message)


def fingerprint_ok(data):
    """Verifies the trailing FINGERPRINT by hand (RFC 8489 section 14.7)."""
    if len(data) < 28 or data[-8:-4] != b"\x80\x28\x00\x04":
        return False
    (value,) = struct.unpack("!I", data[-4:])
    return value == (binascii.crc32(data[:-8]) ^ FINGERPRINT_XOR)


def transact(sock, stun, request):
    """Sends `request` (retransmitting on timeout) and returns the parsed
    reply whose transaction id matches, plus its raw bytes."""
    data = bytes(request)
    for _ in range(ATTEMPTS):
        sock.send(data)
        try:
            while True:
                raw = sock.recv(2048)
                reply = stun.parse_message(raw)  # raises on a bad FINGERPRINT
                check(
                    reply.transaction_id == request.transaction_id,
                    "reply to an unexpected transaction "
                    f"{reply.transaction_id.hex()} (expected "
                    f"{request.transaction_id.hex()}): something sent earlier "
                    "was answered",
                )
                return reply, raw
        except socket.timeout:
            continue
    raise CheckFailed(f"no reply after {ATTEMPTS} attempts of {TIMEOUT_S}s")


def same_address(mapped, local):
    m_ip, m_port = mapped
    l_ip, l_port = local[0], local[1]
    m = ipaddress.ip_address(m_ip)
    l = ipaddress.ip_address(l_ip.split("%", 1)[0])
    if isinstance(l, ipaddress.IPv6Address) and l.ipv4_mapped is not None:
        l = l.ipv4_mapped
    return m == l and m_port == l_port


def run(host, port):
    try:
        from aioice import stun
    except ImportError as e:
        raise CheckFailed(f"aioice is not installed ({e}): pip install aioice==0.13.0")

    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    check(infos, f"cannot resolve {host}")
    family, _, _, _, server = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT_S)
        sock.connect(server)
        local = sock.getsockname()

        # 2 (first, so any reply to them would be caught below): no replies.
        sock.send(b"\x00" * 3 + b"not STUN at all" + b"\xff" * 10)
        indication = stun.Message(
            message_method=stun.Method.BINDING, message_class=stun.Class.INDICATION
        )
        indication.add_fingerprint()
        sock.send(bytes(indication))

        # 1: Binding request -> success response.
        request = stun.Message(
            message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST
        )
        request.attributes["SOFTWARE"] = "stun_third_party.py"
        request.add_fingerprint()
        reply, raw = transact(sock, stun, request)
        check(
            reply.message_method == stun.Method.BINDING
            and reply.message_class == stun.Class.RESPONSE,
            f"expected a Binding success response, got {reply!r}",
        )
        check("FINGERPRINT" in reply.attributes, "no FINGERPRINT in the response")
        check(fingerprint_ok(raw), "FINGERPRINT is not the last attribute or is wrong")
        software = reply.attributes.get("SOFTWARE")
        check(
            software == EXPECTED_SOFTWARE,
            f"SOFTWARE is {software!r}, expected {EXPECTED_SOFTWARE!r}",
        )
        mapped = reply.attributes.get("XOR-MAPPED-ADDRESS")
        check(mapped is not None, "no XOR-MAPPED-ADDRESS in the response")
        check(
            same_address(mapped, local),
            f"XOR-MAPPED-ADDRESS {mapped} is not this client's address {local[:2]}",
        )

        # 3: unsupported comprehension-required attribute -> 420.
        change = stun.Message(
            message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST
        )
        change.attributes["CHANGE-REQUEST"] = 0x06
        change.add_fingerprint()
        err, err_raw = transact(sock, stun, change)
        check(
            err.message_class == stun.Class.ERROR,
            f"expected an error response to CHANGE-REQUEST, got {err!r}",
        )
        check(
            err.attributes.get("ERROR-CODE") == (420, "Unknown Attribute"),
            f"ERROR-CODE is {err.attributes.get('ERROR-CODE')!r}, expected 420",
        )
        check(fingerprint_ok(err_raw), "FINGERPRINT of the 420 response is wrong")

    return mapped


def main(argv):
    if len(argv) != 3:
        print(f"usage: {argv[0]} HOST PORT", file=sys.stderr)
        return 1
    host = argv[1]
    try:
        port = int(argv[2])
    except ValueError:
        print(f"FAIL: port {argv[2]!r} is not a number", file=sys.stderr)
        return 1
    try:
        mapped = run(host, port)
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(
        f"ok: XOR-MAPPED-ADDRESS {mapped[0]}:{mapped[1]} is this client's address; "
        "FINGERPRINT verified; SOFTWARE botcalld; garbage and indications ignored; "
        "420 for CHANGE-REQUEST"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
