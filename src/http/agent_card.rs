//! A2A agent cards (A2A v1.0 `AgentCard`): `/.well-known/agent-card.json`
//! describes the daemon, whose one skill is its directory, and
//! `/agents/{id}/agent-card.json` each listed bot: its name, the voice call
//! as a `supportedInterfaces` entry (protocol binding [`BINDING`], the PWA
//! link as its URL) and, in the [`ANSWER_SIG_EXT`] extension, how a caller
//! checks its answers (its public key for keys-file ES256 bots).
//!
//! Pure writers over the JSON sink: the route only supplies the base URL
//! and the registration.

use botcall_core::json::{Writer, write::Full};
use botcall_core::protocol::{AnswerKey, VERSION};

use crate::store::AgentView;

/// The `protocolBinding` of BotCall's interface: WebSocket signaling
/// (docs/protocol.md) and WebRTC audio.
pub(crate) const BINDING: &str = "BOTCALL";
/// The A2A version the cards follow (`protocolVersion` is A2A's, not
/// BotCall's: the BotCall protocol version is in the extension's params).
pub(crate) const A2A_VERSION: &str = "1.0";
/// The extension that says how to check a bot's `answer_sig`.
pub(crate) const ANSWER_SIG_EXT: &str = "urn:botcall:answer-sig:v1";

/// Longest `Host` accepted in a card URL; a longer or odd one uses the fallback.
const MAX_HOST: usize = 255;

/// The daemon's base URL as the client reached it: `scheme://host[:port]`.
/// `host` (the request's `Host`) is used only if it is a plain host[:port].
pub(crate) fn base_url(https: bool, host: Option<&str>, fallback: &str) -> String {
    let ok = |h: &&str| {
        !h.is_empty()
            && h.len() <= MAX_HOST
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    };
    let host = host.filter(ok).unwrap_or(fallback);
    format!("{}://{host}", if https { "https" } else { "http" })
}

fn capabilities_none<S: botcall_core::json::Sink + ?Sized>(
    w: &mut Writer<'_, S>,
) -> Result<(), Full> {
    w.key("capabilities")?
        .begin_obj()?
        .key("streaming")?
        .bool(false)?
        .key("pushNotifications")?
        .bool(false)?
        .end_obj()?;
    Ok(())
}

fn modes<S: botcall_core::json::Sink + ?Sized>(
    w: &mut Writer<'_, S>,
    mime: &str,
) -> Result<(), Full> {
    for k in ["defaultInputModes", "defaultOutputModes"] {
        w.key(k)?.begin_arr()?.str(mime)?.end_arr()?;
    }
    Ok(())
}

fn interface<S: botcall_core::json::Sink + ?Sized>(
    w: &mut Writer<'_, S>,
    url: &str,
) -> Result<(), Full> {
    w.key("supportedInterfaces")?
        .begin_arr()?
        .begin_obj()?
        .field_str("url", url)?
        .field_str("protocolBinding", BINDING)?
        .field_str("protocolVersion", A2A_VERSION)?
        .end_obj()?
        .end_arr()?;
    Ok(())
}

/// The daemon's card: its directory as a skill.
pub(crate) fn write_daemon_card(w: &mut Writer<'_, Vec<u8>>, base: &str) -> Result<(), Full> {
    w.begin_obj()?.field_str("name", "BotCall")?.field_str(
        "description",
        "A BotCall daemon: a directory of bots that people call by voice from a web page \
             (WebRTC audio, end to end between the caller and the bot).",
    )?;
    interface(w, &format!("{base}/"))?;
    w.field_str("version", env!("CARGO_PKG_VERSION"))?;
    capabilities_none(w)?;
    modes(w, "application/json")?;
    w.key("skills")?
        .begin_arr()?
        .begin_obj()?
        .field_str("id", "directory")?
        .field_str("name", "Bot directory")?
        .field_str(
            "description",
            "Lists the bots listed here that people can call (GET /agents, JSON); \
             each has an agent card at /agents/{id}/agent-card.json.",
        )?
        .key("tags")?
        .begin_arr()?
        .str("directory")?
        .str("voice")?
        .str("bots")?
        .end_arr()?
        .key("examples")?
        .begin_arr()?
        .str(&format!("{base}/agents?online=true"))?
        .end_arr()?
        .end_obj()?
        .end_arr()?;
    w.end_obj()?;
    Ok(())
}

/// A listed bot's card.
pub(crate) fn write_bot_card(
    w: &mut Writer<'_, Vec<u8>>,
    base: &str,
    a: &AgentView,
    key: AnswerKey<'_>,
) -> Result<(), Full> {
    let id = a.rec.agent_id.as_str();
    // A2A requires a non-empty name.
    let name = a
        .rec
        .name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(id);
    w.begin_obj()?.field_str("name", name)?.field_str(
        "description",
        &format!("{name}, a voice bot on BotCall: call it from a browser at {base}/call/{id}."),
    )?;
    interface(w, &format!("{base}/call/{id}"))?;
    // Bots do not declare a version of themselves.
    w.field_str("version", "unspecified")?;
    w.key("capabilities")?
        .begin_obj()?
        .key("streaming")?
        .bool(true)?
        .key("pushNotifications")?
        .bool(false)?
        .key("extensions")?
        .begin_arr()?
        .begin_obj()?
        .field_str("uri", ANSWER_SIG_EXT)?
        .field_str(
            "description",
            match key {
                AnswerKey::Thumbprint => {
                    "The bot signs its call answers; its id is its key's RFC 7638 thumbprint."
                }
                AnswerKey::Key(_) => "The bot signs its call answers with this ES256 key.",
                AnswerKey::None => {
                    "The bot's key is a shared secret: it cannot prove its answers to callers."
                }
            },
        )?
        .key("required")?
        .bool(false)?
        .key("params")?
        .begin_obj()?
        .field_str("agentId", id)?
        .field_u64("botcallProtocol", VERSION)?
        .field_str("answerSig", key.as_str())?
        .key("jwk")?;
    match key {
        AnswerKey::Key(vk) => botcall_core::jwt::key::write_public_jwk(w, vk, None)?,
        _ => {
            w.null()?;
        }
    }
    w.key("online")?.bool(a.online)?;
    w.field_str("signaling", &format!("{}/ws", ws_base(base)))?;
    w.end_obj()?.end_obj()?.end_arr()?.end_obj()?;
    modes(w, "audio/opus")?;
    w.key("skills")?
        .begin_arr()?
        .begin_obj()?
        .field_str("id", "voice-call")?
        .field_str("name", "Voice call")?
        .field_str(
            "description",
            &format!("Talk to {name} by voice: WebRTC, Opus audio, signaling over BotCall."),
        )?
        .key("tags")?
        .begin_arr()?
        .str("voice")?
        .str("call")?
        .str("webrtc")?
        .end_arr()?
        .end_obj()?
        .end_arr()?;
    w.end_obj()?;
    Ok(())
}

fn ws_base(base: &str) -> String {
    match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(base)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_take_only_plain_hosts() {
        assert_eq!(
            base_url(false, Some("bots.example:8080"), "0.0.0.0:1"),
            "http://bots.example:8080"
        );
        assert_eq!(base_url(true, Some("[::1]:443"), "x"), "https://[::1]:443");
        for bad in ["", "a/b", "a b", "evil\"}", &"h".repeat(256)] {
            assert_eq!(
                base_url(false, Some(bad), "127.0.0.1:8080"),
                "http://127.0.0.1:8080"
            );
        }
        assert_eq!(ws_base("https://h"), "wss://h");
        assert_eq!(ws_base("http://h:1"), "ws://h:1");
    }

    #[test]
    fn the_daemon_card_is_json_with_its_directory_skill() {
        let mut v = Vec::new();
        write_daemon_card(&mut Writer::new(&mut v), "http://h").unwrap();
        let card: serde_json::Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(card["skills"][0]["id"], "directory");
        assert_eq!(card["supportedInterfaces"][0]["url"], "http://h/");
        assert_eq!(card["supportedInterfaces"][0]["protocolBinding"], BINDING);
    }
}
