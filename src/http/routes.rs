//! The HTTP API: one function per route, and [`handle`] that picks one,
//! applies the per-IP rate limit and counts the outcome.
//!
//! | route | handler |
//! |---|---|
//! | `POST /register` | [`register`] |
//! | `DELETE /register/{id}` | [`unregister`] |
//! | `GET /lookup/{id}` | [`lookup`] |
//! | `GET /agents` | [`agents`] |
//! | `GET /.well-known/jwks.json`, `/healthz`, `/metrics` | inline |
//! | anything else `GET` | [`super::static_files`] (the PWA) |

use std::net::{IpAddr, SocketAddr};

use botcall_core::id;
use botcall_core::json::Writer;
use botcall_core::protocol::{self, AgentInfo, Codecs, ProtoError, RegisterRequest};

use super::request::Request;
use super::{Response, static_files};
use crate::app::{App, OpenRefused};
use crate::auth::{AuthError, Authenticated};
use crate::client::ClientKey;
use crate::store::{AgentStore, AgentView, Record, StoreError};

/// The client address, believing `X-Forwarded-For` only from trusted
/// proxies (see [`crate::client::forwarded_client`]).
pub(crate) fn client_ip(app: &App, req: &Request<'_>, peer: SocketAddr) -> IpAddr {
    crate::client::forwarded_client(
        peer.ip(),
        req.headers_all("x-forwarded-for"),
        &app.cfg.trusted_proxies,
    )
}

/// The client's key for per-IP limits.
pub(crate) fn client_key(app: &App, req: &Request<'_>, peer: SocketAddr) -> ClientKey {
    ClientKey::new(client_ip(app, req, peer), app.cfg.ipv6_prefix)
}

/// Answers one request (not the WebSocket upgrade).
pub(crate) async fn handle(app: &App, req: &Request<'_>, peer: SocketAddr) -> Response {
    let path = req
        .path
        .strip_prefix("/v1")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(req.path);
    let (name, is_api) = route_name(path);
    let mut resp = if is_api
        && let Err(retry) = app
            .auth
            .ip_limiter
            .borrow_mut()
            .check(&client_key(app, req, peer), app.clock.mono_ms())
    {
        app.metrics.rate_limited.inc("ip");
        rate_limited(retry)
    } else {
        dispatch(app, req, peer, path, name).await
    };
    if req.method == "HEAD" {
        resp.head_only = true;
    }
    app.metrics.http_requests.inc((name, resp.status));
    resp
}

fn route_name(path: &str) -> (&'static str, bool) {
    match path {
        "/register" => ("register", true),
        p if p.starts_with("/register/") => ("unregister", true),
        p if p.starts_with("/lookup/") => ("lookup", true),
        "/agents" => ("agents", true),
        p if p.starts_with("/agents/") && p.ends_with("/agent-card.json") => ("agent_card", true),
        "/.well-known/agent-card.json" => ("directory_card", false),
        "/.well-known/jwks.json" => ("jwks", false),
        "/healthz" => ("healthz", false),
        "/metrics" => ("metrics", false),
        "/push/key" => ("push_key", true),
        "/push/subscriptions" => ("push_subscriptions", true),
        "/ws" | "/v1/ws" => ("ws", false),
        _ => ("static", false),
    }
}

fn method_not_allowed(allow: &'static str) -> Response {
    Response::error(
        405,
        "method_not_allowed",
        "method not allowed on this route",
    )
    .with_header("allow", allow)
}

pub(crate) fn rate_limited(retry: u64) -> Response {
    let secs = retry.to_string();
    Response::error_with(
        429,
        "rate_limited",
        "too many requests",
        &[("retry_after", &secs)],
    )
    .with_header("retry-after", secs)
}

fn is_get(req: &Request<'_>) -> bool {
    req.method == "GET" || req.method == "HEAD"
}

async fn dispatch(
    app: &App,
    req: &Request<'_>,
    peer: SocketAddr,
    path: &str,
    name: &'static str,
) -> Response {
    match name {
        "register" if req.method == "POST" => register(app, req, peer).await,
        "register" => method_not_allowed("POST"),
        "unregister" if req.method == "DELETE" => {
            unregister(app, req, &path["/register/".len()..]).await
        }
        "unregister" => method_not_allowed("DELETE"),
        "lookup" if is_get(req) => lookup(app, &path["/lookup/".len()..]).await,
        "lookup" => method_not_allowed("GET, HEAD"),
        "agents" if is_get(req) => agents(app, req).await,
        "agents" => method_not_allowed("GET, HEAD"),
        "agent_card" | "directory_card" if is_get(req) => {
            let id = path
                .strip_prefix("/agents/")
                .and_then(|p| p.strip_suffix("/agent-card.json"));
            agent_card(app, req, peer, id).await
        }
        "agent_card" | "directory_card" => method_not_allowed("GET, HEAD"),
        "jwks" if is_get(req) => Response::json(200, app.attest.jwks().as_bytes().to_vec())
            .with_header("cache-control", "public, max-age=300"),
        "healthz" if is_get(req) => healthz(app),
        "metrics" if is_get(req) => {
            #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
            let mut gauges = app.store.gauges();
            #[cfg(feature = "redis")]
            if let Some(r) = app.store.redis() {
                // With a shared store, "online" is this daemon's bots.
                gauges.online = app.hub.borrow().online_count() as u64;
                app.metrics.redis_up.set(i64::from(r.is_up()));
            }
            let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            app.metrics.buffer_bytes.set(gauge(app.budget.used()));
            app.metrics.buffer_budget.set(gauge(app.budget.limit()));
            app.metrics.push_table.set(gauge(app.push.table_len()));
            let mut r = Response::json(200, app.metrics.render(gauges).into_bytes());
            r.content_type = "text/plain; version=0.0.4; charset=utf-8";
            r
        }
        "push_key" if is_get(req) => crate::push::routes::key(app),
        "push_key" => method_not_allowed("GET, HEAD"),
        "push_subscriptions" => {
            crate::push::routes::subscriptions(app, req, client_key(app, req, peer)).await
        }
        "ws" => Response::error(426, "upgrade_required", "this endpoint speaks WebSocket")
            .with_header("upgrade", "websocket"),
        "jwks" | "healthz" | "metrics" => method_not_allowed("GET, HEAD"),
        _ if is_get(req) => static_files::serve(
            path,
            req.header("if-none-match"),
            req.header("accept-encoding"),
        ),
        _ => Response::error(404, "not_found", "no such route"),
    }
}

fn healthz(app: &App) -> Response {
    let mut body = Vec::with_capacity(64);
    let mut w = Writer::new(&mut body);
    let _ = (|| -> Result<(), botcall_core::json::write::Full> {
        w.begin_obj()?
            .field_str("status", "ok")?
            .field_str("version", env!("CARGO_PKG_VERSION"))?
            .field_str("pwa_build", static_files::BUILD)?;
        let memory = app.cfg.store == "memory";
        w.field_str("store", if memory { "memory" } else { "redis" })?;
        // Liveness stays 200 while Redis is away (every daemon shares it, so
        // draining this one would not help); `store_up` says whether
        // lookups and registrations work right now.
        w.key("store_up")?.bool(app.store.is_up())?;
        w.end_obj()?;
        Ok(())
    })();
    Response::json(200, body).with_header("cache-control", "no-store")
}

fn store_error(app: &App, e: StoreError) -> Response {
    match e {
        StoreError::Full => {
            app.metrics.table_full.inc();
            Response::error(503, "table_full", "the agent table is full")
        }
        StoreError::Taken => Response::error(403, "id_taken", "another key owns this agent id"),
        StoreError::Unavailable => {
            app.metrics.store_errors.inc();
            Response::error(503, "store_unavailable", "the agent store is unavailable")
                .with_header("retry-after", "5")
        }
    }
}

fn auth_error(app: &App, e: AuthError) -> Response {
    if let AuthError::Busy(retry) = e {
        app.metrics.rate_limited.inc("verify");
        let secs = retry.to_string();
        return Response::error(503, "server_busy", &e.message()).with_header("retry-after", secs);
    }
    app.metrics.auth_failures.inc(e.reason());
    let status = if e == AuthError::UnknownAgent {
        403
    } else {
        401
    };
    let code = if status == 403 {
        "unknown_agent"
    } else {
        "unauthorized"
    };
    let mut r = Response::error_with(status, code, &e.message(), &[("reason", e.reason())]);
    if status == 401 {
        r = r.with_header("www-authenticate", "Bearer");
    }
    r
}

/// Token check shared by register and unregister.
fn authenticate(app: &App, req: &Request<'_>) -> Result<Authenticated, Response> {
    let Some(token) = req.bearer() else {
        app.metrics.auth_failures.inc("missing_token");
        return Err(Response::error_with(
            401,
            "unauthorized",
            "Authorization: Bearer <BotAuth token> required",
            &[("reason", "missing_token")],
        )
        .with_header("www-authenticate", "Bearer"));
    };
    let a = app
        .auth
        .authenticate(token, app.clock.unix(), app.clock.mono_ms())
        .map_err(|e| auth_error(app, e))?;
    if a.cached {
        app.metrics.token_cache_hits.inc();
    } else {
        app.metrics.token_cache_misses.inc();
    }
    Ok(a)
}

fn agent_limit(app: &App, id: &id::AgentId) -> Result<(), Response> {
    app.auth
        .agent_limiter
        .borrow_mut()
        .check(id, app.clock.mono_ms())
        .map_err(|retry| {
            app.metrics.rate_limited.inc("agent");
            rate_limited(retry)
        })
}

/// The HTTP `code` for a register body error: one of the documented 400
/// codes. (`ProtoError::code` names socket errors; a missing field is
/// `bad_message` there.)
fn body_error_code(e: &ProtoError) -> &'static str {
    match e.code() {
        c @ ("bad_json" | "invalid_agent_id") => c,
        _ => "bad_field",
    }
}

/// `POST /register`.
async fn register(app: &App, req: &Request<'_>, peer: SocketAddr) -> Response {
    let ct = req.header("content-type").unwrap_or("");
    if !ct
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Response::error(
            415,
            "unsupported_media_type",
            "Content-Type must be application/json",
        );
    }
    let Ok(body) = std::str::from_utf8(req.body) else {
        return Response::error(400, "bad_json", "body is not UTF-8");
    };
    let reg = match RegisterRequest::decode(body) {
        Ok(r) => r,
        Err(e) => return Response::error(400, body_error_code(&e), &e.to_string()),
    };
    if reg.ttl.is_some_and(|t| t < app.cfg.min_ttl) {
        let msg = format!("ttl must be at least {} seconds", app.cfg.min_ttl);
        return Response::error(400, "bad_field", &msg);
    }
    let authed = match authenticate(app, req) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if authed.proven.agent_id != reg.agent_id {
        app.metrics.auth_failures.inc("wrong_agent");
        return Response::error(403, "wrong_agent", "the token's sub is not this agent_id");
    }
    // Only after authentication: if failed attempts drew from the id's bucket,
    // anyone could keep a bot from refreshing by naming its id.
    if let Err(r) = agent_limit(app, &reg.agent_id) {
        return r;
    }
    let mut ttl = reg.ttl.unwrap_or(protocol::DEFAULT_TTL);
    if authed.proven.open {
        // Throwaway keys cost nothing: open ids live shorter and come in
        // at a bounded pace per client (the answer's `expires_in` says so).
        ttl = ttl.min(app.cfg.open_max_ttl);
        match app
            .admit_open_id(&reg.agent_id, client_key(app, req, peer))
            .await
        {
            Ok(()) => {}
            Err(OpenRefused::Quota(retry)) => return rate_limited(retry),
            Err(OpenRefused::Store(e)) => return store_error(app, e),
        }
    }
    let listed = reg.listed.unwrap_or(false);
    let rec = Record {
        agent_id: reg.agent_id.clone(),
        endpoint: reg.endpoint.map(|t| t.to_string().into_boxed_str()),
        name: reg.name.map(|t| t.to_string().into_boxed_str()),
        audio: reg.audio.unwrap_or(Codecs::OPUS),
        ttl: u32::try_from(ttl).unwrap_or(u32::MAX),
        max_calls: reg.max_calls.unwrap_or(1) as u8,
        listed,
        owner: authed.proven.owner,
        open: authed.proven.open,
    };
    match app.store.register(rec, app.clock.unix()).await {
        Ok(expires_in) => {
            crate::log_info!(
                "registered agent {} (expires in {expires_in} s, listed {listed})",
                reg.agent_id
            );
            let mut body = Vec::with_capacity(96);
            let mut w = Writer::new(&mut body);
            let _ = (|| -> Result<(), botcall_core::json::write::Full> {
                w.begin_obj()?.key("confirmed")?.bool(true)?;
                w.field_str("agent_id", &reg.agent_id)?
                    .field_u64("expires_in", expires_in)?;
                w.end_obj()?;
                Ok(())
            })();
            Response::json(200, body)
        }
        Err(e) => store_error(app, e),
    }
}

/// `DELETE /register/{id}`.
async fn unregister(app: &App, req: &Request<'_>, id: &str) -> Response {
    let Ok(agent) = id::AgentId::new(id) else {
        return Response::error(
            400,
            "invalid_agent_id",
            "agent ids are 1-64 characters of A-Z a-z 0-9 . _ -",
        );
    };
    let authed = match authenticate(app, req) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if authed.proven.agent_id != agent {
        app.metrics.auth_failures.inc("wrong_agent");
        return Response::error(403, "wrong_agent", "the token's sub is not this agent_id");
    }
    if let Err(r) = agent_limit(app, &agent) {
        return r;
    }
    match app
        .store
        .unregister(id, &authed.proven.owner, app.clock.unix())
        .await
    {
        Ok(true) => {
            crate::log_info!("unregistered agent {agent}");
            let mut body = Vec::with_capacity(64);
            let mut w = Writer::new(&mut body);
            let _ = (|| -> Result<(), botcall_core::json::write::Full> {
                w.begin_obj()?
                    .key("deleted")?
                    .bool(true)?
                    .field_str("agent_id", id)?
                    .end_obj()?;
                Ok(())
            })();
            Response::json(200, body)
        }
        Ok(false) => Response::error(404, "not_found", "no such agent"),
        Err(e) => store_error(app, e),
    }
}

fn write_agent(
    app: &App,
    w: &mut Writer<'_, Vec<u8>>,
    a: &AgentView,
) -> Result<(), botcall_core::json::write::Full> {
    AgentInfo {
        agent_id: a.rec.agent_id.as_str(),
        endpoint: a.rec.endpoint.as_deref(),
        name: a.rec.name.as_deref(),
        online: a.online,
        audio: a.rec.audio,
        expires_in: a.expires_in,
        listed: a.rec.listed,
        max_calls: u64::from(a.rec.max_calls),
        answer_key: app.auth.answer_key(a.rec.agent_id.as_str()),
    }
    .write(w)
}

fn invalid_id() -> Response {
    Response::error(
        400,
        "invalid_agent_id",
        "agent ids are 1-64 characters of A-Z a-z 0-9 . _ -",
    )
}

/// `GET /lookup/{id}`.
async fn lookup(app: &App, id: &str) -> Response {
    if id::validate(id).is_err() {
        return invalid_id();
    }
    match app.store.lookup(id, app.clock.unix()).await {
        Ok(Some(a)) => {
            let mut body = Vec::with_capacity(256);
            let _ = write_agent(app, &mut Writer::new(&mut body), &a);
            Response::json(200, body).with_header("cache-control", "no-store")
        }
        Ok(None) => Response::error(404, "not_found", "no such agent"),
        Err(e) => store_error(app, e),
    }
}

/// `GET /.well-known/agent-card.json` (`id` None) and
/// `GET /agents/{id}/agent-card.json` (listed bots only): A2A agent cards.
async fn agent_card(app: &App, req: &Request<'_>, peer: SocketAddr, id: Option<&str>) -> Response {
    use super::agent_card as card;
    let https = app.cfg.tls_cert.is_some()
        || (app.cfg.trusted_proxies.contains(&peer.ip())
            && req
                .header("x-forwarded-proto")
                .is_some_and(|p| p.eq_ignore_ascii_case("https")));
    let fallback = app.cfg.listen.to_string();
    let base = card::base_url(https, req.header("host"), &fallback);
    let mut body = Vec::with_capacity(1024);
    let Some(id) = id else {
        let _ = card::write_daemon_card(&mut Writer::new(&mut body), &base);
        return Response::json(200, body).with_header("cache-control", "public, max-age=300");
    };
    if id::validate(id).is_err() {
        return invalid_id();
    }
    match app.store.lookup(id, app.clock.unix()).await {
        // Cards describe the directory's entries: unlisted bots have none.
        Ok(Some(a)) if a.rec.listed => {
            let key = app.auth.answer_key(id);
            let _ = card::write_bot_card(&mut Writer::new(&mut body), &base, &a, key);
            Response::json(200, body).with_header("cache-control", "no-store")
        }
        Ok(_) => Response::error(404, "not_found", "no such listed agent"),
        Err(e) => store_error(app, e),
    }
}

/// `GET /agents?online=true&limit=N&cursor=C`.
async fn agents(app: &App, req: &Request<'_>) -> Response {
    let online = match req.query_param("online") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(_) => return Response::error(400, "bad_field", "online must be true or false"),
    };
    let limit = match req.query_param("limit") {
        None => 50,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Response::error(400, "bad_field", "limit must be 1-100"),
        },
    };
    let cursor = req.query_param("cursor").filter(|c| !c.is_empty());
    if cursor.is_some_and(|c| {
        c.len() > 64
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }) {
        return Response::error(400, "bad_field", "bad cursor");
    }
    match app
        .store
        .list(online, limit, cursor, app.clock.unix())
        .await
    {
        Ok(page) => {
            let mut body = Vec::with_capacity(128 + 200 * page.agents.len());
            let mut w = Writer::new(&mut body);
            let _ = (|| -> Result<(), botcall_core::json::write::Full> {
                w.begin_obj()?.key("agents")?.begin_arr()?;
                for a in &page.agents {
                    write_agent(app, &mut w, a)?;
                }
                w.end_arr()?.key("next_cursor")?;
                match &page.next_cursor {
                    Some(c) => w.str(c)?,
                    None => w.null()?,
                };
                w.end_obj()?;
                Ok(())
            })();
            Response::json(200, body).with_header("cache-control", "no-store")
        }
        Err(e) => store_error(app, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_body_errors_use_documented_codes() {
        let long = format!(r#"{{"agent_id":"a","name":"{}"}}"#, "n".repeat(65));
        for (body, code) in [
            ("{", "bad_json"),
            (r#"{"agent_id":"a","agent_id":"b"}"#, "bad_json"),
            (r#"{"agent_id":"a/b"}"#, "invalid_agent_id"),
            (r#"{"agent_id":""}"#, "invalid_agent_id"),
            ("{}", "bad_field"),
            (r#"{"agent_id":7}"#, "bad_field"),
            (r#"{"agent_id":"a","ttl":"60"}"#, "bad_field"),
            ("[]", "bad_field"),
            (&long, "bad_field"),
        ] {
            let e = RegisterRequest::decode(body).unwrap_err();
            assert_eq!(body_error_code(&e), code, "{body}");
        }
    }
}
