//! Call signaling: the sans-IO [`hub::Hub`] plus the glue that needs the
//! store or the clock — bot authentication on `hello`, "not found" versus
//! "offline" for calls, ICE server lists with TURN credentials.

// The daemon-to-daemon half of the router (sans-IO, unit-tested either
// way) has no transport without the `redis` feature.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod calls;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod hub;
mod human;
pub(crate) mod ice;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod remote;
#[cfg(test)]
mod tests;

use std::time::Instant;

use botcall_core::protocol::{self, Codecs, Msg, Role};

use crate::app::App;
use crate::store::{AgentStore, Record, StoreError};
use crate::ws::frame::close;
use crate::ws::handshake::PreHello;
use hub::ConnId;

/// `RTCIceServer[]` JSON for one session's `welcome`.
pub(crate) fn ice_servers(app: &App, host: &str, user: &str, unix: u64) -> String {
    app.hub.borrow().ice().servers(Some(host), user, unix)
}

/// Handles one text message from socket `conn`.
pub(crate) async fn on_message(
    app: &App,
    conn: ConnId,
    text: &str,
    pre: &mut Option<Box<PreHello>>,
) {
    let now = Instant::now();
    let unix = app.clock.unix();
    let msg = match Msg::decode(text) {
        Ok(m) => m,
        Err(e) => {
            app.hub
                .borrow_mut()
                .error(conn, e.code(), &e.to_string(), None);
            return;
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
            match role {
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
                                    "unauthorized",
                                    "a bot hello needs a BotAuth token",
                                    close::POLICY,
                                );
                                return;
                            }
                        },
                    };
                    bot_hello(app, conn, &token, max_calls, &host, now, unix).await;
                }
            }
            *pre = None;
        }
        Msg::Call { ref to, .. } if has_role && !app.hub.borrow().is_online(to) => {
            let found = app.store.lookup(to, unix).await;
            let mut hub = app.hub.borrow_mut();
            // The bot may have come online here during the lookup.
            if hub.is_online(to) {
                hub.handle(conn, msg, None, now, unix);
                return;
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
}

fn refuse(app: &App, conn: ConnId, code: &'static str, message: &str, close_code: u16) {
    let mut hub = app.hub.borrow_mut();
    hub.error(conn, code, message, None);
    hub.kick(conn, close_code, code);
}

async fn bot_hello(
    app: &App,
    conn: ConnId,
    token: &str,
    max_calls: Option<u64>,
    host: &str,
    now: Instant,
    unix: u64,
) {
    let authed = match app.auth.authenticate(token, unix) {
        Ok(a) => a,
        Err(e) => {
            app.metrics.auth_failures.inc(e.reason());
            refuse(app, conn, "unauthorized", &e.message(), close::POLICY);
            return;
        }
    };
    if authed.cached {
        app.metrics.token_cache_hits.inc();
    } else {
        app.metrics.token_cache_misses.inc();
    }
    let agent = authed.proven.agent_id;
    let hello_calls = max_calls.map(|n| n.min(protocol::MAX_CALLS) as u8);
    let rec = Record {
        agent_id: agent.clone(),
        endpoint: None,
        name: None,
        audio: Codecs::OPUS,
        ttl: protocol::DEFAULT_TTL as u32,
        max_calls: hello_calls.unwrap_or(1),
        listed: false,
        owner: authed.proven.owner,
    };
    match app.store.attach(rec, unix).await {
        Ok(a) => {
            let ice = ice_servers(app, host, agent.as_str(), unix);
            let calls = hello_calls.unwrap_or(a.max_calls);
            let hello = hub::BotHello {
                agent,
                owner: authed.proven.owner,
                max_calls: calls,
                moved_from: a.moved_from,
            };
            app.hub.borrow_mut().hello_bot(conn, hello, &ice, now);
        }
        Err(StoreError::Taken) => refuse(
            app,
            conn,
            "id_taken",
            "another key owns this agent id",
            close::POLICY,
        ),
        Err(StoreError::Full) => {
            app.metrics.table_full.inc();
            refuse(
                app,
                conn,
                "server_busy",
                "the agent table is full",
                close::TRY_AGAIN,
            );
        }
        Err(StoreError::Unavailable) => {
            app.metrics.store_errors.inc();
            refuse(
                app,
                conn,
                "server_busy",
                "the store is unavailable, try again",
                close::TRY_AGAIN,
            );
        }
    }
}
