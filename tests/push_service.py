"""A loopback Web Push service for the tests: a real HTTP server that plays
a browser's push service. It records every message, decrypts it with the
`http_ece` package (RFC 8291 / 8188, third-party) using the subscription
keys it made up, and checks the VAPID token (RFC 8292) with PyJWT against
the daemon's `GET /v1/push/key`.

    python push_service.py http://127.0.0.1:PORT   # prints "PORT <n>", serves
    python push_service.py --make-ca DIR [--rsa]   # a test CA and a localhost certificate
                                                   # (ECDSA P-256, or RSA-2048 with --rsa)
    python push_service.py http://127.0.0.1:PORT --tls DIR [--tls12]
                                                   # also HTTPS: "PORT <n> <tls>"
                                                   # (--tls12: TLS 1.2 at most)

Routes:
  GET  /keys/<name>   a subscription for <name>: {endpoint, keys:{p256dh, auth}}
                      (names starting `tls` get https://localhost:<tls>/p/<name>)
  POST /p/<name>      a push message (201; names starting `gone` get 410,
                      `busy` get 429 with Retry-After: 1 the first time)
  GET  /log           every message received, as JSON
"""

import base64
import datetime
import json
import os
import ssl
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAEMON = sys.argv[1]
TLS_PORT = None
LOCK = threading.Lock()
SUBS = {}  # name -> (private key, auth secret)
LOG = []
SEEN = {}  # name -> messages received


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def daemon_key():
    with urllib.request.urlopen(DAEMON + "/v1/push/key", timeout=10) as r:
        return json.load(r)["public_key"]


def check_vapid(header, origin):
    """RFC 8292: `vapid t=<jwt>, k=<key>`; the key is the daemon's."""
    out = {"ok": False}
    try:
        scheme, _, params = header.partition(" ")
        assert scheme.lower() == "vapid", f"scheme {scheme}"
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        k = fields["k"]
        out["k_matches"] = k == daemon_key()
        point = unb64u(k)
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        claims = jwt.decode(
            fields["t"],
            pub,
            algorithms=["ES256"],
            audience=origin,
            options={"require": ["exp", "aud", "sub"]},
        )
        header = jwt.get_unverified_header(fields["t"])
        out.update(
            aud=claims["aud"],
            sub=claims["sub"],
            exp_in=claims["exp"] - int(time.time()),
            alg=header["alg"],
            typ=header.get("typ"),
        )
        out["ok"] = (
            out["k_matches"]
            and 0 < out["exp_in"] <= 24 * 3600
            and claims["sub"].startswith(("mailto:", "https:"))
        )
    except Exception as e:  # noqa: BLE001 - recorded for the test to read
        out["error"] = repr(e)
    return out


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/keys/"):
            name = self.path[len("/keys/") :]
            with LOCK:
                if name not in SUBS:
                    key = ec.generate_private_key(ec.SECP256R1())
                    SUBS[name] = (key, __import__("os").urandom(16))
                key, auth = SUBS[name]
            point = key.public_key().public_bytes(
                serialization.Encoding.X962,
                serialization.PublicFormat.UncompressedPoint,
            )
            host = f"http://127.0.0.1:{self.server.server_address[1]}"
            if name.startswith("tls"):
                host = f"https://localhost:{TLS_PORT}"
            sub = {
                "endpoint": f"{host}/p/{name}",
                "expirationTime": None,
                "keys": {"p256dh": b64u(point), "auth": b64u(auth)},
            }
            self.reply(200, json.dumps(sub).encode())
        elif self.path == "/log":
            with LOCK:
                body = json.dumps(LOG).encode()
            self.reply(200, body)
        else:
            self.reply(404)

    def do_POST(self):
        if not self.path.startswith("/p/"):
            self.reply(404)
            return
        name = self.path[len("/p/") :]
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        scheme = "https" if self.server.server_address[1] == TLS_PORT else "http"
        origin = f"{scheme}://{self.headers.get('host')}"
        rec = {
            "name": name,
            "ttl": self.headers.get("ttl"),
            "urgency": self.headers.get("urgency"),
            "topic": self.headers.get("topic"),
            "encoding": self.headers.get("content-encoding"),
            "vapid": check_vapid(self.headers.get("authorization", ""), origin),
            "bytes": len(body),
        }
        if scheme == "https":
            rec["tls"] = {
                "version": self.connection.version(),
                "cipher": self.connection.cipher()[0],
            }
        with LOCK:
            sub = SUBS.get(name)
            n = SEEN.get(name, 0)
            SEEN[name] = n + 1
        if sub is None:
            rec["status"] = 404
        else:
            try:
                plain = http_ece.decrypt(
                    body, private_key=sub[0], auth_secret=sub[1], version="aes128gcm"
                )
                rec["payload"] = json.loads(plain)
            except Exception as e:  # noqa: BLE001 - recorded for the test
                rec["decrypt_error"] = repr(e)
            if name.startswith("gone"):
                rec["status"] = 410
            elif name.startswith("busy") and n == 0:
                rec["status"] = 429
            else:
                rec["status"] = 201
        with LOCK:
            LOG.append(rec)
        headers = [("retry-after", "1")] if rec["status"] == 429 else []
        self.reply(rec["status"], b"", headers)


def make_ca(d, use_rsa=False):
    """A CA and a certificate for `localhost` it signed (PEM files in `d`):
    ECDSA P-256 keys, or RSA-2048 ones (`use_rsa`)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def new_key():
        if use_rsa:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    ca_key = new_key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("botcall test push CA"))
        .issuer_name(name("botcall test push CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    with open(os.path.join(d, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(d, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(os.path.join(d, "key.pem"), "wb") as f:
        f.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )


def main():
    global TLS_PORT
    if DAEMON == "--make-ca":
        make_ca(sys.argv[2], use_rsa="--rsa" in sys.argv)
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    servers = [server]
    ports = [str(server.server_address[1])]
    if "--tls" in sys.argv:
        d = sys.argv[sys.argv.index("--tls") + 1]
        tls = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
        if "--tls12" in sys.argv:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        TLS_PORT = tls.server_address[1]
        servers.append(tls)
        ports.append(str(TLS_PORT))
        threading.Thread(target=tls.serve_forever, daemon=True).start()
    print("PORT " + " ".join(ports), flush=True)
    # Bounded: the test kills us, and we stop by ourselves after 10 minutes.
    threading.Timer(600, lambda: [s.shutdown() for s in servers]).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
