//! Messages between daemons (scale-out over Redis pub/sub).
//!
//! Each daemon listens on its own channel. An envelope carries one
//! signaling message plus the routing facts the other daemon cannot know:
//!
//! ```json
//! {"from":"<daemon id>","call_id":"c-…","session":"s-…","hv":"pow","agent":"weather",
//!  "kind":"signal","msg":{"type":"answer",…}}
//! ```
//!
//! `kind` is `signal` (a protocol message about `call_id`), `moved` (the
//! agent said hello on the sender; the receiver closes its socket and hands
//! its calls over), `adopt` (here is a call of your bot: `state` is
//! `ringing` or `answered`, `peer` the daemon holding the caller, or empty
//! when the sender holds it) or `rebind` (the bot side of `call_id` now
//! lives on `peer`).

use botcall_core::id::AgentId;
use botcall_core::json::{self, Writer};
use botcall_core::protocol::Msg;

/// What kind of envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Signal,
    Moved,
    Adopt,
    Rebind,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Signal => "signal",
            Kind::Moved => "moved",
            Kind::Adopt => "adopt",
            Kind::Rebind => "rebind",
        }
    }
}

/// An envelope to send.
#[derive(Debug, Default, Clone)]
pub(crate) struct Out<'a> {
    pub(crate) call_id: Option<&'a str>,
    pub(crate) session: Option<&'a str>,
    pub(crate) hv: Option<&'a str>,
    pub(crate) agent: Option<&'a str>,
    pub(crate) state: Option<&'a str>,
    pub(crate) peer: Option<&'a str>,
}

/// Encodes an envelope from daemon `from`.
pub(crate) fn encode(from: &str, kind: Kind, out: &Out<'_>, msg: Option<&Msg<'_>>) -> Vec<u8> {
    let mut v = Vec::with_capacity(256);
    let mut w = Writer::new(&mut v);
    // A Vec sink never fills up.
    let _ = (|| -> Result<(), json::write::Full> {
        w.begin_obj()?
            .field_str("from", from)?
            .field_str("kind", kind.as_str())?;
        for (k, val) in [
            ("call_id", out.call_id),
            ("session", out.session),
            ("hv", out.hv),
            ("agent", out.agent),
            ("state", out.state),
            ("peer", out.peer),
        ] {
            if let Some(val) = val {
                w.field_str(k, val)?;
            }
        }
        w.end_obj()?;
        Ok(())
    })();
    if let Some(m) = msg {
        // Splice `"msg": {...}` before the closing brace.
        v.pop();
        v.extend_from_slice(b",\"msg\":");
        let _ = m.encode(&mut v);
        v.push(b'}');
    }
    v
}

/// A received envelope, borrowing its text.
#[derive(Debug)]
pub(crate) struct In<'a> {
    pub(crate) from: String,
    pub(crate) kind: Kind,
    pub(crate) call_id: Option<AgentId>,
    pub(crate) session: Option<AgentId>,
    pub(crate) hv: Option<String>,
    pub(crate) agent: Option<AgentId>,
    pub(crate) state: Option<String>,
    pub(crate) peer: Option<String>,
    pub(crate) msg: Option<Msg<'a>>,
}

fn id(o: &json::Object<'_>, k: &'static str) -> Option<AgentId> {
    let s: heapless::String<64> = o.opt_str(k).ok()??.to_heapless().ok()?;
    AgentId::new(&s).ok()
}

fn text(o: &json::Object<'_>, k: &'static str) -> Option<String> {
    o.opt_str(k)
        .ok()?
        .map(|s| s.to_string())
        .filter(|s| s.len() <= 128)
}

/// Decodes an envelope; `None` for anything malformed (it came from a peer
/// daemon, so it is dropped and counted, never trusted blindly).
pub(crate) fn decode(text_in: &str) -> Option<In<'_>> {
    let o = json::parse_object(text_in).ok()?;
    let kind = match o.opt_str("kind").ok()?? {
        k if k.eq_str("signal") => Kind::Signal,
        k if k.eq_str("moved") => Kind::Moved,
        k if k.eq_str("adopt") => Kind::Adopt,
        k if k.eq_str("rebind") => Kind::Rebind,
        _ => return None,
    };
    let msg = match o.opt_obj("msg").ok()? {
        Some(m) => Some(Msg::decode(m.raw()).ok()?),
        None => None,
    };
    Some(In {
        from: text(&o, "from")?,
        kind,
        call_id: id(&o, "call_id"),
        session: id(&o, "session"),
        hv: text(&o, "hv"),
        agent: id(&o, "agent"),
        state: text(&o, "state"),
        peer: text(&o, "peer"),
        msg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use botcall_core::protocol::Text;

    #[test]
    fn round_trip() {
        let call_id = AgentId::new("c-1").unwrap();
        let m = Msg::Hangup {
            call_id,
            reason: Text::Str("bye"),
        };
        let out = Out {
            call_id: Some("c-1"),
            session: Some("s-1"),
            ..Out::default()
        };
        let bytes = encode("d-a", Kind::Signal, &out, Some(&m));
        let text = std::str::from_utf8(&bytes).unwrap();
        let back = decode(text).unwrap();
        assert_eq!(back.from, "d-a");
        assert_eq!(back.kind, Kind::Signal);
        assert_eq!(back.call_id.unwrap().as_str(), "c-1");
        let Some(Msg::Hangup { reason, .. }) = back.msg else {
            panic!("{:?}", back.msg)
        };
        assert!(reason.eq_str("bye"));
        drop(m);
        assert!(decode(r#"{"from":"x","kind":"bogus"}"#).is_none());
        assert!(decode("not json").is_none());
        let moved = encode(
            "d-b",
            Kind::Moved,
            &Out {
                agent: Some("bot"),
                ..Out::default()
            },
            None,
        );
        let back = decode(std::str::from_utf8(&moved).unwrap()).unwrap();
        assert_eq!(
            (back.kind, back.agent.unwrap().as_str()),
            (Kind::Moved, "bot")
        );
    }
}
