"""A2A agent cards from a real botcalld, validated with the A2A Python SDK.

`/.well-known/agent-card.json` (the daemon, its directory as a skill) and
`/agents/{id}/agent-card.json` (each listed bot) must parse strictly into
`a2a.types.AgentCard` (a2a-sdk, PyPI: unknown fields are errors) and carry
every field A2A v1.0 marks REQUIRED. Run by tests/all:
    BOTCALLD=target/debug/botcalld python -m pytest -q tests/python
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from _daemon import BOTCALLD, Daemon
from a2a.types import AgentCard
from a2a.utils.errors import InvalidParamsError
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf import json_format


def keygen(path: Path, *extra: str) -> dict:
    subprocess.run(
        [BOTCALLD, "keygen", "--out", str(path), *extra], check=True, capture_output=True
    )
    return json.loads(path.read_text())


def public(jwk: dict) -> dict:
    return {k: v for k, v in jwk.items() if k != "d"}


def token(key: Path, sub: str, *extra: str) -> str:
    out = subprocess.run(
        [BOTCALLD, "token", "--key", str(key), "--sub", sub, *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def card(text: str) -> AgentCard:
    """Strict A2A parse (unknown fields are errors), then the REQUIRED fields."""
    c = json_format.Parse(text, AgentCard())
    validate_proto_required_fields(c)
    return c


@pytest.fixture
def setup(tmp_path: Path):
    ec = keygen(tmp_path / "ec.jwk")
    hs = keygen(tmp_path / "hs.jwk", "--hs256")
    keygen(tmp_path / "open.jwk")
    keys = tmp_path / "keys.json"
    agents = {"ec-bot": public(ec), "hs-bot": hs, "hs-hidden": hs}
    keys.write_text(json.dumps({"agents": agents}))
    d = Daemon(tmp_path, extra=("--keys", str(keys)))
    yield d, tmp_path, ec
    d.stop()


def register(d: Daemon, key: Path, agent: str, body: dict, *extra: str) -> None:
    status, text = d.request(
        "/register", "POST", {"agent_id": agent, **body}, token(key, agent, *extra)
    )
    assert status == 200, text


def test_the_daemon_and_its_listed_bots_have_valid_a2a_cards(setup) -> None:
    d, tmp, ec = setup
    register(d, tmp / "ec.jwk", "ec-bot", {"name": "Echo", "listed": True})
    # An empty display name still gives a card with a name (A2A requires one).
    register(d, tmp / "hs.jwk", "hs-bot", {"name": "", "listed": True})
    register(d, tmp / "hs.jwk", "hs-hidden", {"listed": False})

    status, text = d.request("/.well-known/agent-card.json")
    assert status == 200, text
    root = card(text)
    assert root.name == "BotCall"
    assert [s.id for s in root.skills] == ["directory"]
    assert root.supported_interfaces[0].protocol_binding == "BOTCALL"
    assert root.supported_interfaces[0].url == d.url + "/"

    status, text = d.request("/agents")
    listed = [a["agent_id"] for a in json.loads(text)["agents"]]
    assert sorted(listed) == ["ec-bot", "hs-bot"]
    cards = {}
    for agent in listed:
        status, text = d.request(f"/agents/{agent}/agent-card.json")
        assert status == 200, text
        cards[agent] = card(text)
        c = cards[agent]
        (iface,) = c.supported_interfaces
        assert iface.url == f"{d.url}/call/{agent}"
        assert iface.protocol_binding == "BOTCALL"
        assert iface.protocol_version == "1.0"  # A2A's version
        assert [s.id for s in c.skills] == ["voice-call"]
        assert list(c.default_input_modes) == ["audio/opus"]
    assert cards["ec-bot"].name == "Echo"
    assert cards["hs-bot"].name == "hs-bot"
    # The bot's public key, in the answer-signature extension.
    ext = json_format.MessageToDict(cards["ec-bot"].capabilities.extensions[0])
    assert ext["uri"] == "urn:botcall:answer-sig:v1"
    params = ext["params"]
    assert params["answerSig"] == "key"
    assert params["botcallProtocol"] == 1
    assert {k: params["jwk"][k] for k in ("kty", "crv", "x", "y")} == {
        k: ec[k] for k in ("kty", "crv", "x", "y")
    }
    assert "d" not in params["jwk"]
    hs_params = json_format.MessageToDict(cards["hs-bot"].capabilities.extensions[0])["params"]
    assert hs_params["answerSig"] == "none"
    assert hs_params.get("jwk") is None

    # No card for unlisted or unknown bots; bad ids and methods are refused.
    for path, want, code in [
        ("/agents/hs-hidden/agent-card.json", 404, "not_found"),
        ("/agents/nobody/agent-card.json", 404, "not_found"),
        ("/agents/a%20b/agent-card.json", 400, "invalid_agent_id"),
    ]:
        status, text = d.request(path)
        assert (status, json.loads(text)["code"]) == (want, code), path
    status, text = d.request("/.well-known/agent-card.json", "POST", {})
    assert (status, json.loads(text)["code"]) == (405, "method_not_allowed")


def test_an_open_registration_bot_card_says_its_id_is_its_key(setup) -> None:
    d, tmp, _ = setup
    key = tmp / "open.jwk"
    jwk = json.loads(key.read_text())
    # The RFC 7638 thumbprint, as the daemon computes it.
    canon = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]},
        separators=(",", ":"),
    )
    tp = base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
    register(d, key, tp, {"listed": True}, "--embed-jwk")
    status, text = d.request(f"/agents/{tp}/agent-card.json")
    assert status == 200, text
    params = json_format.MessageToDict(card(text).capabilities.extensions[0])["params"]
    assert params["answerSig"] == "thumbprint"
    assert params["agentId"] == tp


def test_the_validator_refuses_what_a2a_refuses() -> None:
    # The checks above can fail: a card without a REQUIRED field, or with a
    # field A2A does not define, is refused.
    good = {
        "name": "x",
        "description": "d",
        "supportedInterfaces": [{"url": "u", "protocolBinding": "B", "protocolVersion": "1"}],
        "version": "1",
        "capabilities": {"streaming": False},
        "defaultInputModes": ["audio/opus"],
        "defaultOutputModes": ["audio/opus"],
        "skills": [{"id": "s", "name": "n", "description": "d", "tags": ["t"]}],
    }
    card(json.dumps(good))
    for broken in [
        {k: v for k, v in good.items() if k != "name"},
        {k: v for k, v in good.items() if k != "skills"},
        {**good, "publicKey": "x"},
    ]:
        with pytest.raises((InvalidParamsError, json_format.ParseError)):
            card(json.dumps(broken))
