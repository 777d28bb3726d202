//! The glue between a socket's text messages and the sans-IO router
//! ([`crate::signal::hub`]): what needs the store, auth or the clock around
//! a message — bot authentication on `hello`, "not found" versus "offline"
//! for calls, ICE server lists with TURN credentials.

use std::time::Instant;

use botcall_core::protocol::{self, Codecs, Msg, Role, close};

use super::handshake::PreHello;
use crate::app::{App, OpenRefused};
use crate::auth::AuthError;
use crate::client::ClientKey;
use crate::ids::ConnId;
use crate::signal::hub;
use crate::store::{AgentStore, Record, StoreError};

/// What handling a message changed about the socket, for its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing the task needs to know.
    Handled,
    /// The socket is now a keys-file bot: the operator's own fleet, which
    /// no longer counts against its IP's connection limit.
    TrustedBot,
}

/// `RTCIceServer[]` JSON for one session's `welcome`.
pub(crate) fn ice_servers(app: &App, host: &str, user: &str, unix: u64) -> String {
    app.hub.borrow().ice().servers(Some(host), user, unix)
}

/// Handles one text message from socket `conn`, whose client is `client`.
pub(crate) async fn on_message(
    app: &App,
    conn: ConnId,
    text: &str,
    pre: &mut Option<Box<PreHello>>,
    client: ClientKey,
) -> Outcome {
    let now = Instant::now();
    let unix = app.clock.unix();
    let msg = match Msg::decode(text) {
        Ok(m) => m,
        Err(e) => {
            app.hub
                .borrow_mut()
                .error(conn, e.code(), &e.to_string(), None);
            return Outcome::Handled;
        }
    };
    let has_role = app.hub.borrow().has_role(conn).is_some();
    match msg {
        Msg::Hello {
            role,
            token,
            max_calls,
        } if !has_role => {
            let host = pre.as_ref().map(|p| p.host.to_string()).unwrap_or_default();
            let mut outcome = Outcome::Handled;
            match role {
                Role::Caller if !pre.as_ref().is_some_and(|p| p.caller_ok) => {
                    // Another site's page would be using its visitors'
                    // browsers as our callers (or proof-of-work solvers).
                    refuse(
                        app,
                        conn,
                        now,
                        "forbidden_origin",
                        "callers must come from this daemon's own web app (or an allowed origin)",
                        close::POLICY,
                    );
                }
                Role::Caller => {
                    let ice = ice_servers(app, &host, &format!("caller-{conn}"), unix);
                    app.hub.borrow_mut().hello_caller(conn, &ice, now);
                }
                Role::Bot => {
                    let token = match &token {
                        Some(t) => t.to_string(),
                        None => match pre.as_ref().and_then(|p| p.bearer.as_deref()) {
                            Some(b) => b.to_string(),
                            None => {
                                refuse(
                                    app,
                                    conn,
                                    now,
                                    "unauthorized",
                                    "a bot hello needs a BotAuth token",
                                    close::POLICY,
                                );
                                return Outcome::Handled;
                            }
                        },
                    };
                    let hello = BotHelloIn {
                        token: &token,
                        max_calls,
                        host: &host,
                        client,
                    };
                    outcome = bot_hello(app, conn, hello, now, unix).await;
                }
            }
            *pre = None;
            return outcome;
        }
        Msg::Call { .. } if has_role => {
            // Each call signs an attestation and rings a bot: paced per client.
            if let Err(retry) = app
                .auth
                .call_limiter
                .borrow_mut()
                .check(&client, app.clock.mono_ms())
            {
                app.metrics.rate_limited.inc("call_ip");
                let m = format!("too many calls; try again in {retry} s");
                app.hub.borrow_mut().error(conn, "rate_limited", &m, None);
                return Outcome::Handled;
            }
        }
        _ => {}
    }
    if let Msg::Callback { ref to, ref text } = msg {
        callback(app, conn, to, text).await;
        return Outcome::Handled;
    }
    match msg {
        Msg::Call { ref to, .. } if has_role && !app.hub.borrow().is_online(to) => {
            let found = app.store.lookup(to, unix).await;
            let mut hub = app.hub.borrow_mut();
            // The bot may have come online here during the lookup.
            if hub.is_online(to) {
                hub.handle(conn, msg, None, now, unix);
                return Outcome::Handled;
            }
            match found {
                Ok(Some(v)) if v.online && v.daemon.is_some() => {
                    hub.handle(conn, msg, v.daemon, now, unix)
                }
                Ok(Some(_)) => hub.error(conn, "offline", "the agent is not online", None),
                Ok(None) => hub.error(conn, "not_found", "no such agent", None),
                Err(_) => {
                    app.metrics.store_errors.inc();
                    hub.error(
                        conn,
                        "server_busy",
                        "the store is unavailable, try again",
                        None,
                    );
                }
            }
        }
        other => app.hub.borrow_mut().handle(conn, other, None, now, unix),
    }
    Outcome::Handled
}

/// A bot's `callback`: a push notification asking subscriber `to` to call
/// back (docs/protocol.md, "Push notifications"); refusals come back as `error`.
async fn callback(app: &App, conn: ConnId, to: &str, text: &protocol::Text<'_>) {
    let bot = app.hub.borrow().bot_agent(conn);
    let Some(bot) = bot else {
        app.hub
            .borrow_mut()
            .error(conn, "wrong_role", "only bots send callback", None);
        return;
    };
    let mut buf = [0u8; protocol::MAX_CALLBACK_TEXT];
    let Ok(text) = text.decode_into(&mut buf) else {
        app.hub
            .borrow_mut()
            .error(conn, "bad_field", "callback text is too long", None);
        return;
    };
    if let Err((code, m)) = crate::push::task::callback(app, &bot, to, text).await {
        app.hub.borrow_mut().error(conn, code, &m, None);
    }
}

fn refuse(
    app: &App,
    conn: ConnId,
    now: Instant,
    code: &'static str,
    message: &str,
    close_code: u16,
) {
    let mut hub = app.hub.borrow_mut();
    hub.error(conn, code, message, None);
    hub.kick(conn, close_code, code, now);
}

/// A bot's `hello`, as the socket saw it.
struct BotHelloIn<'a> {
    token: &'a str,
    max_calls: Option<u64>,
    /// Host name for the ICE server list.
    host: &'a str,
    client: ClientKey,
}

async fn bot_hello(
    app: &App,
    conn: ConnId,
    hello: BotHelloIn<'_>,
    now: Instant,
    unix: u64,
) -> Outcome {
    // A hello may cost a signature check: it is paced like an HTTP request.
    if let Err(retry) = app
        .auth
        .ip_limiter
        .borrow_mut()
        .check(&hello.client, app.clock.mono_ms())
    {
        app.metrics.rate_limited.inc("hello");
        let m = format!("too many requests; try again in {retry} s");
        refuse(app, conn, now, "rate_limited", &m, close::POLICY);
        return Outcome::Handled;
    }
    let authed = match app
        .auth
        .authenticate(hello.token, unix, app.clock.mono_ms())
    {
        Ok(a) => a,
        Err(e @ AuthError::Busy(_)) => {
            app.metrics.rate_limited.inc("verify");
            refuse(
                app,
                conn,
                now,
                "server_busy",
                &e.message(),
                close::TRY_AGAIN,
            );
            return Outcome::Handled;
        }
        Err(e) => {
            app.metrics.auth_failures.inc(e.reason());
            refuse(app, conn, now, "unauthorized", &e.message(), close::POLICY);
            return Outcome::Handled;
        }
    };
    if authed.cached {
        app.metrics.token_cache_hits.inc();
    } else {
        app.metrics.token_cache_misses.inc();
    }
    let agent = authed.proven.agent_id;
    let open = authed.proven.open;
    if open {
        match app.admit_open_id(&agent, hello.client).await {
            Ok(()) => {}
            Err(OpenRefused::Quota(retry)) => {
                let m = format!("too many new ids from your address; try again in {retry} s");
                refuse(app, conn, now, "rate_limited", &m, close::POLICY);
                return Outcome::Handled;
            }
            Err(OpenRefused::Store(_)) => {
                app.metrics.store_errors.inc();
                refuse(
                    app,
                    conn,
                    now,
                    "server_busy",
                    "the store is unavailable, try again",
                    close::TRY_AGAIN,
                );
                return Outcome::Handled;
            }
        }
    }
    let hello_calls = hello.max_calls.map(|n| n.min(protocol::MAX_CALLS) as u8);
    let rec = Record {
        agent_id: agent.clone(),
        endpoint: None,
        name: None,
        audio: Codecs::OPUS,
        ttl: if open {
            protocol::DEFAULT_TTL.min(app.cfg.open_max_ttl) as u32
        } else {
            protocol::DEFAULT_TTL as u32
        },
        max_calls: hello_calls.unwrap_or(1),
        listed: false,
        owner: authed.proven.owner,
        open,
    };
    match app.store.attach(rec, unix).await {
        Ok(a) => {
            let ice = ice_servers(app, hello.host, agent.as_str(), unix);
            let calls = hello_calls.unwrap_or(a.max_calls);
            let online = agent.clone();
            let hello = hub::BotHello {
                agent,
                owner: authed.proven.owner,
                max_calls: calls,
                moved_from: a.moved_from,
            };
            app.hub.borrow_mut().hello_bot(conn, hello, &ice, now);
            crate::push::task::bot_online(app, &online);
            if open {
                Outcome::Handled
            } else {
                Outcome::TrustedBot
            }
        }
        Err(StoreError::Taken) => {
            refuse(
                app,
                conn,
                now,
                "id_taken",
                "another key owns this agent id",
                close::POLICY,
            );
            Outcome::Handled
        }
        Err(StoreError::Full) => {
            app.metrics.table_full.inc();
            refuse(
                app,
                conn,
                now,
                "server_busy",
                "the agent table is full",
                close::TRY_AGAIN,
            );
            Outcome::Handled
        }
        Err(StoreError::Unavailable) => {
            app.metrics.store_errors.inc();
            refuse(
                app,
                conn,
                now,
                "server_busy",
                "the store is unavailable, try again",
                close::TRY_AGAIN,
            );
            Outcome::Handled
        }
    }
}
