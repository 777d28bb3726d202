#!/usr/bin/env python3
"""A WebRTC peer nobody on the project wrote: aiortc (PyPI, 1.16.0), talking
to botcalld over its WebSocket (`websockets` from PyPI).

Usage:
  aiortc_peer.py caller --ws URL --to AGENT --wav FILE [--no-hangup]
  aiortc_peer.py bot --ws URL --jwks URL --agent ID --token JWT

caller: places a call with aiortc's own, unmodified offer (three
  a=fingerprint lines: sha-256, sha-384, sha-512), sends the WAV (speech from
  espeak-ng) and records what comes back. An echo bot's echo must follow the
  envelope of what was sent: the result has the Pearson correlation of the
  20 ms RMS envelopes at the best lag, and the RMS of both. Then it hangs up
  (`hangup` "bye", then closes the peer connection), or with --no-hangup only
  closes the peer connection, as a crashed tab's last act, and waits for
  the daemon's `hangup` (the bot freed the call).

bot: says hello as a bot with the given BotAuth token, verifies the first
  `incoming` attestation itself with PyJWT against the daemon's JWKS
  (signature, aud, call_id, fp = the offer's sha-256 line, fps = all of
  them), answers with aiortc, sends a 660 Hz tone at 0.3 and measures the
  RMS of what it hears until the caller hangs up.

Both print one line `RESULT {json}` and exit 0, or exit 1 with a message.
Loopback only: aioice skips 127.0.0.1 when it gathers host candidates, so
this script makes it gather exactly that address (the offer and answer are
aiortc's own otherwise).
"""

import argparse
import array
import asyncio
import fractions
import json
import math
import sys
import time
import urllib.request
import wave

import aioice.ice
import jwt
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from av import AudioFrame

LIMIT_S = 90
PTIME = 0.02

# Loopback host candidates only (see the module doc).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: (
    ["127.0.0.1"] if use_ipv4 else []
)


def fingerprints(sdp):
    """The a=fingerprint values of an SDP, normalised (lower hash, upper hex)."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=fingerprint:"):
            hash_name, hex_value = line[len("a=fingerprint:") :].split()
            fp = f"{hash_name.lower()} {hex_value.upper()}"
            if fp not in out:
                out.append(fp)
    return out


def rms(samples):
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768.0


def envelope(samples, rate):
    n = int(rate * PTIME)
    return [rms(samples[i : i + n]) for i in range(0, len(samples) - n + 1, n)]


def pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = math.sqrt(sum((x - ma) ** 2 for x in a))
    vb = math.sqrt(sum((y - mb) ** 2 for y in b))
    return cov / (va * vb) if va and vb else 0.0


def best_lag(sent, received):
    """(correlation, lag in windows) of `sent` inside `received`."""
    best = (-1.0, 0)
    for lag in range(len(received) - len(sent) + 1):
        c = pearson(sent, received[lag : lag + len(sent)])
        if c > best[0]:
            best = (c, lag)
    return best


class SamplesTrack(MediaStreamTrack):
    """Plays `samples` (mono s16 at `rate`), then silence, paced in real time.
    Keeps what it actually sent."""

    kind = "audio"

    def __init__(self, samples, rate):
        super().__init__()
        self.samples, self.rate = samples, rate
        self.per_frame = int(rate * PTIME)
        self.sent = array.array("h")
        self.start = None

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        n = len(self.sent) // self.per_frame
        if self.start is None:
            self.start = time.time()
        else:
            await asyncio.sleep(max(0.0, self.start + n * PTIME - time.time()))
        at = n * self.per_frame
        chunk = self.samples[at : at + self.per_frame]
        chunk.extend([0] * (self.per_frame - len(chunk)))
        self.sent.extend(chunk)
        frame = AudioFrame(format="s16", layout="mono", samples=self.per_frame)
        frame.planes[0].update(chunk.tobytes())
        frame.pts = at
        frame.sample_rate = self.rate
        frame.time_base = fractions.Fraction(1, self.rate)
        return frame


def tone(freq, amplitude, rate, seconds):
    return array.array(
        "h",
        (
            int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate))
            for i in range(int(rate * seconds))
        ),
    )


class Recorder:
    """Collects the first channel of a remote audio track (48 kHz s16)."""

    def __init__(self):
        self.samples = array.array("h")
        self.rate = 48000
        self.frames = 0

    async def run(self, track):
        try:
            while True:
                frame = await track.recv()
                channels = len(frame.layout.channels)
                data = array.array(
                    "h", bytes(frame.planes[0])[: frame.samples * channels * 2]
                )
                self.samples.extend(data[::channels])
                self.rate = frame.sample_rate
                self.frames += 1
        except MediaStreamError:
            pass


async def next_msg(ws, timeout):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def add_remote_candidate(pc, cand):
    """An `ice` message's candidate (object, string or null) into aiortc."""
    if cand is None:
        await pc.addIceCandidate(None)
        return
    if isinstance(cand, str):
        cand = {"candidate": cand}
    line = cand.get("candidate") or ""
    if not line:
        await pc.addIceCandidate(None)
        return
    c = candidate_from_sdp(line.removeprefix("a=").removeprefix("candidate:"))
    if c.protocol.lower() != "udp":
        return
    c.sdpMid = cand.get("sdpMid")
    c.sdpMLineIndex = cand.get("sdpMLineIndex")
    if c.sdpMid is None and c.sdpMLineIndex is None:
        c.sdpMLineIndex = 0
    await pc.addIceCandidate(c)


async def caller(a):
    with wave.open(a.wav, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit("the WAV must be 16-bit mono")
        rate = w.getframerate()
        speech = array.array("h", w.readframes(w.getnframes()))
    deadline = time.time() + LIMIT_S
    out = {}
    async with websockets.connect(a.ws) as ws:
        await ws.send(json.dumps({"type": "hello", "role": "caller", "v": 1}))
        welcome = await next_msg(ws, 10)
        assert welcome["type"] == "welcome", welcome
        pc = RTCPeerConnection()
        track = SamplesTrack(speech, rate)
        pc.addTrack(track)
        rec = Recorder()
        tasks = []
        pc.on("track", lambda t: tasks.append(asyncio.ensure_future(rec.run(t))))
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        out["offer_fingerprints"] = fingerprints(offer)
        out["offer_fingerprint_lines"] = sum(
            1 for l in offer.splitlines() if l.startswith("a=fingerprint:")
        )
        await ws.send(json.dumps({"type": "call", "to": a.to, "sdp_offer": offer}))
        call_id = None
        # Enough audio back to hold the whole speech plus a second of delay.
        want = len(speech) / rate + 1.0
        while rec.frames * PTIME < want:
            if time.time() > deadline:
                raise SystemExit(f"no echo: {rec.frames} frames back in {LIMIT_S} s")
            try:
                m = await next_msg(ws, 0.2)
            except TimeoutError:
                continue
            if m["type"] == "ringing":
                call_id = m["call_id"]
            elif m["type"] == "answer":
                if a.bot_jwk:
                    out["answer_sig"] = verify_answer_sig(
                        m.get("answer_sig"), json.loads(a.bot_jwk), a.to, call_id, offer, m
                    )
                await pc.setRemoteDescription(
                    RTCSessionDescription(m["sdp_answer"], "answer")
                )
            elif m["type"] == "ice":
                await add_remote_candidate(pc, m["candidate"])
            else:
                raise SystemExit(f"caller got {m}")
        out["call_id"] = call_id
        if a.no_hangup:
            await pc.close()
            while True:
                m = await next_msg(ws, max(1.0, deadline - time.time()))
                if m["type"] == "hangup":
                    out["daemon_hangup"] = m["reason"]
                    break
        else:
            await ws.send(
                json.dumps({"type": "hangup", "call_id": call_id, "reason": "bye"})
            )
            await pc.close()
        for t in tasks:
            t.cancel()
    sent_env = envelope(speech, rate)
    recv_env = envelope(rec.samples, rec.rate)
    corr, lag = best_lag(sent_env, recv_env)
    echo = rec.samples[
        int(lag * PTIME * rec.rate) : int((lag * PTIME + len(speech) / rate) * rec.rate)
    ]
    out.update(
        correlation=round(corr, 3),
        lag_ms=int(lag * PTIME * 1000),
        sent_rms=round(rms(speech), 4),
        echo_rms=round(rms(echo), 4),
        sent_frames=len(track.sent) // track.per_frame,
        received_frames=rec.frames,
    )
    print("RESULT " + json.dumps(out), flush=True)


def verify_answer_sig(token, bot_jwk, agent, call_id, offer, msg):
    """A caller's check of the bot's answer signature, with PyJWT: an
    implementation independent of botcall_core::answer_sig and the PWA's."""
    if not token:
        raise SystemExit("the answer is not signed")
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "botcall-answer+jwt":
        raise SystemExit(f"not an answer signature: {header}")
    key = jwt.PyJWK(bot_jwk).key
    claims = jwt.decode(
        token, key, algorithms=["ES256"], leeway=60, options={"require": ["exp", "iat", "sub"]}
    )
    if claims["exp"] - claims["iat"] > 120 or claims["sub"] != agent:
        raise SystemExit(f"bad claims {claims}")
    if claims["call_id"] != call_id:
        raise SystemExit("answer signed for another call")
    sha256 = [f for f in fingerprints(offer) if f.startswith("sha-256 ")]
    if [claims["fp"]] != sha256:
        raise SystemExit(f"signed caller fp {claims['fp']} is not ours {sha256}")
    if sorted(claims["bfps"]) != sorted(fingerprints(msg["sdp_answer"])):
        raise SystemExit(f"bfps {claims['bfps']} are not the answer's")
    return "verified"


def sign_answer(key_file, agent, call_id, offer, answer):
    """The bot's answer signature (docs/protocol.md), made with PyJWT."""
    with open(key_file) as f:
        private = json.load(f)
    public = {k: private[k] for k in ("kty", "crv", "x", "y")}
    now = int(time.time())
    claims = {
        "sub": agent,
        "call_id": call_id,
        "fp": next(f for f in fingerprints(offer) if f.startswith("sha-256 ")),
        "bfps": fingerprints(answer),
        "iat": now,
        "exp": now + 60,
    }
    headers = {"typ": "botcall-answer+jwt", "jwk": public}
    return jwt.encode(claims, jwt.PyJWK(private).key, algorithm="ES256", headers=headers)


def verify_attestation(token, jwks, agent, call_id, offer):
    """The bot's own check of the daemon's human attestation (PyJWT)."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=agent)
    fps = fingerprints(offer)
    sha256 = [f for f in fps if f.startswith("sha-256 ")]
    if claims["call_id"] != call_id:
        raise SystemExit("attestation for another call")
    if [claims["fp"]] != sha256:
        raise SystemExit(f"fp {claims['fp']} is not the offer's sha-256 line {sha256}")
    if sorted(claims.get("fps", [claims["fp"]])) != sorted(fps):
        raise SystemExit(f"fps {claims.get('fps')} are not the offer's {fps}")
    return claims


async def bot(a):
    jwks = json.loads(
        await asyncio.to_thread(
            lambda: urllib.request.urlopen(a.jwks, timeout=10).read()
        )
    )
    deadline = time.time() + LIMIT_S
    out = {}
    async with websockets.connect(a.ws) as ws:
        await ws.send(
            json.dumps({"type": "hello", "role": "bot", "token": a.token, "v": 1})
        )
        welcome = await next_msg(ws, 10)
        assert welcome["type"] == "welcome", welcome
        print("online", flush=True)
        inc = await next_msg(ws, LIMIT_S)
        assert inc["type"] == "incoming", inc
        call_id, offer = inc["call_id"], inc["sdp_offer"]
        claims = verify_attestation(inc["attestation"], jwks, a.agent, call_id, offer)
        out["attestation"] = {k: claims.get(k) for k in ("fp", "fps", "hv", "sub")}
        pc = RTCPeerConnection()
        rec = Recorder()
        tasks = []
        pc.on("track", lambda t: tasks.append(asyncio.ensure_future(rec.run(t))))
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        pc.addTrack(SamplesTrack(tone(660, 0.3, 48000, LIMIT_S), 48000))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription.sdp
        out["answer_fingerprint_lines"] = sum(
            1 for l in answer.splitlines() if l.startswith("a=fingerprint:")
        )
        msg = {"type": "answer", "call_id": call_id, "sdp_answer": answer}
        if a.sign_key:
            msg["answer_sig"] = sign_answer(a.sign_key, a.agent, call_id, offer, answer)
        await ws.send(json.dumps(msg))
        while True:
            m = await next_msg(ws, max(1.0, deadline - time.time()))
            if m["type"] == "ice" and m.get("call_id") == call_id:
                await add_remote_candidate(pc, m["candidate"])
            elif m["type"] == "hangup" and m.get("call_id") == call_id:
                out["hangup"] = m["reason"]
                break
        await pc.close()
        for t in tasks:
            t.cancel()
    # The best 1 s window of what the caller's microphone sent.
    n = rec.rate
    windows = [
        rms(rec.samples[i : i + n]) for i in range(0, len(rec.samples) - n + 1, n)
    ]
    out.update(received_frames=rec.frames, best_rms=round(max(windows, default=0.0), 4))
    print("RESULT " + json.dumps(out), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("caller")
    c.add_argument("--ws", required=True)
    c.add_argument("--to", required=True)
    c.add_argument("--wav", required=True)
    c.add_argument("--no-hangup", action="store_true")
    c.add_argument("--bot-jwk", help="the bot's public JWK: check the answer's answer_sig")
    b = sub.add_parser("bot")
    b.add_argument("--ws", required=True)
    b.add_argument("--jwks", required=True)
    b.add_argument("--agent", required=True)
    b.add_argument("--token", required=True)
    b.add_argument("--sign-key", help="the bot's private JWK file: sign the answer")
    a = p.parse_args()
    try:
        asyncio.run(caller(a) if a.mode == "caller" else bot(a))
    except SystemExit:
        raise
    except Exception as e:  # one line for the Rust test to show
        print(f"aiortc_peer: {type(e).__name__}: {e}", file=sys.stderr)
        raise SystemExit(1) from e


if __name__ == "__main__":
    main()
