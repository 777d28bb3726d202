//! One WebSocket after the upgrade: a small task that moves bytes.
//!
//! Idle cost is what matters (tens of thousands of bots sit here), so the
//! task holds no buffers while idle: reads go into one thread-local scratch
//! buffer; only a partial frame or fragmented message is copied into a
//! per-socket `Vec`, freed again once complete — and it must complete within
//! `header_timeout`, or the socket is closed. Outbound frames (pongs too)
//! wait in the [`Registry`](super::registry::Registry) entry, bounded by `ws_queue_bytes`: a reader too
//! slow to drain it is closed with 1013 rather than buffered without limit.
//! Every byte held in these buffers is taken from the daemon's
//! [`Budget`](crate::budget::Budget); when it is spent, the socket that wants more is closed (1013).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite, FutureExt};

use super::frame::{self, FrameError};
use super::handshake::PreHello;
use super::route;
use super::session::{Action, Dropped, Limits, Session};
use crate::app::{App, ConnGuard};
use crate::budget::Held;
use crate::client::ClientKey;
use crate::ids::ConnId;
use crate::net::Stream;
use botcall_core::protocol::close;

/// Scratch read size; a frame larger than what is left is gathered in `pending`.
const READ_CHUNK: usize = 16 * 1024;
/// How long a closing socket may take to accept its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; READ_CHUNK]);
}

/// Per-socket state owned by its task.
struct ConnState {
    /// Bytes of an incomplete frame.
    pending: Vec<u8>,
    /// The protocol state: fragments, the rate budget.
    session: Session,
    /// What `pending` and the session's fragments (capacity) take from the budget.
    held: Held,
    /// Armed while a frame or message is incomplete: it must be complete
    /// within `header_timeout`, or the socket is closed (a client cannot
    /// park half a message here until the heartbeat ends it).
    partial_deadline: Option<Pin<Box<async_io::Timer>>>,
    /// Facts from the upgrade, until `hello`.
    pre: Option<Box<PreHello>>,
    /// Who is at the other end (per-client limits on hello and calls).
    client: ClientKey,
    close_timer: Option<Pin<Box<async_io::Timer>>>,
    /// The last read drained the socket: wait for readiness before reading
    /// again (a read now would only return EAGAIN — two of them with
    /// async-io's tick bookkeeping — before arming the poller).
    drained: bool,
}

impl ConnState {
    fn is_partial(&self) -> bool {
        !self.pending.is_empty() || self.session.is_partial()
    }
}

enum Event {
    Message(Vec<u8>),
    Closed,
}

/// Starts the task for an upgraded socket.
pub(crate) fn spawn(
    app: Rc<App>,
    stream: Stream,
    leftover: Vec<u8>,
    pre: PreHello,
    client: ClientKey,
    guard: ConnGuard,
) {
    let id = app.ws.borrow_mut().insert();
    app.hub.borrow_mut().open(id, Instant::now());
    let st = ConnState {
        pending: leftover,
        session: Session::new(
            Limits {
                max_message: app.cfg.max_message_bytes,
                rate: app.cfg.ws_rate,
                burst: app.cfg.ws_burst,
            },
            Instant::now(),
        ),
        held: Held::new(&app.budget),
        partial_deadline: None,
        pre: Some(Box::new(pre)),
        client,
        close_timer: None,
        drained: false,
    };
    let task_app = app.clone();
    app.spawn(run(task_app, id, stream, st, guard));
}

async fn run(
    app: Rc<App>,
    id: ConnId,
    mut stream: Stream,
    mut st: ConnState,
    mut guard: ConnGuard,
) {
    loop {
        let ev = poll_fn(|cx| poll_conn(&app, id, &mut stream, &mut st, cx)).await;
        match ev {
            Event::Message(bytes) => {
                app.metrics.ws_messages_in.inc();
                // Boxed so the idle task stays small: the handler's state only
                // exists while a message is being handled.
                // The one UTF-8 check of the message (RFC 6455 §8.1).
                let Ok(text) = String::from_utf8(bytes) else {
                    shut(&app, id, close::BAD_DATA, "text is not UTF-8");
                    app.deliver();
                    continue;
                };
                let outcome =
                    Box::pin(route::on_message(&app, id, &text, &mut st.pre, st.client)).await;
                if outcome == route::Outcome::TrustedBot {
                    // A keys-file bot: the operator's own fleet, not a stranger
                    // holding slots. It no longer counts against its IP.
                    guard.release_client();
                }
                // We poll again right away and flush: no self-wake needed.
                app.ws.borrow_mut().running = Some(id);
                app.deliver();
                app.ws.borrow_mut().running = None;
            }
            Event::Closed => break,
        }
    }
    drop(st);
    app.hub.borrow_mut().close(id, Instant::now());
    app.ws.borrow_mut().remove(id);
    app.deliver();
    drop(guard);
}

/// Closes from our side: queue a close frame and stop reading.
fn shut(app: &App, id: ConnId, code: u16, reason: &str) {
    app.metrics.ws_closed.inc(code);
    app.ws.borrow_mut().close(id, code, reason, false);
    app.hub.borrow_mut().close(id, Instant::now());
}

/// Brings the budget in line with what the socket's inbound buffers hold
/// now; `false` when they grew and the budget is spent (the caller closes).
fn account(st: &mut ConnState) -> bool {
    let now = st.pending.capacity() + st.session.held();
    st.held.resize(now)
}

/// Frees the inbound buffers (the socket is closing) and their budget.
fn drop_inbound(st: &mut ConnState) {
    st.pending = Vec::new();
    st.session.drop_inbound();
    st.partial_deadline = None;
    st.held.resize(0);
}

/// Polls one socket with `running` set, so its own outputs don't wake it.
fn poll_conn(
    app: &Rc<App>,
    id: ConnId,
    stream: &mut Stream,
    st: &mut ConnState,
    cx: &mut Context<'_>,
) -> Poll<Event> {
    app.ws.borrow_mut().running = Some(id);
    let r = poll_conn_inner(app, id, stream, st, cx);
    app.ws.borrow_mut().running = None;
    r
}

fn poll_conn_inner(
    app: &Rc<App>,
    id: ConnId,
    stream: &mut Stream,
    st: &mut ConnState,
    cx: &mut Context<'_>,
) -> Poll<Event> {
    loop {
        // 1. Hand the hub's outputs (ours included) to the queues, then
        //    write what is queued for this socket.
        app.deliver();
        let closing = {
            let mut reg = app.ws.borrow_mut();
            let reg = &mut *reg;
            let Some(e) = reg.conns.get_mut(id) else {
                return Poll::Ready(Event::Closed);
            };
            if e.waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                e.waker = Some(cx.waker().clone());
            }
            while let Some(front) = e.out.front() {
                match Pin::new(&mut *stream).poll_write(cx, &front[e.sent..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Event::Closed),
                    Poll::Ready(Ok(n)) => {
                        e.sent += n;
                        if e.sent == front.len() {
                            let len = front.len();
                            e.out_bytes -= len;
                            reg.budget.give(len);
                            e.out.pop_front();
                            e.sent = 0;
                            if e.out.is_empty() {
                                e.pong_at_tail = false;
                            }
                            app.metrics.ws_messages_out.inc();
                        }
                    }
                    Poll::Pending => break,
                }
            }
            // An idle socket keeps no queue allocation at all.
            if e.out.is_empty() && e.out.capacity() > 0 {
                e.out = VecDeque::new();
            }
            if e.closing && e.out.is_empty() {
                return Poll::Ready(Event::Closed);
            }
            e.closing
        };
        if closing {
            drop_inbound(st);
            // Wait (bounded) for the peer to take the close frame.
            let timer = st
                .close_timer
                .get_or_insert_with(|| Box::pin(async_io::Timer::after(CLOSE_GRACE)));
            return match timer.poll(cx) {
                Poll::Ready(_) => Poll::Ready(Event::Closed),
                Poll::Pending => Poll::Pending,
            };
        }

        // 2. Read and parse.
        let ready = if st.drained {
            stream.poll_read_ready(cx)
        } else {
            Poll::Ready(Ok(()))
        };
        let step = match ready {
            Poll::Pending => None,
            Poll::Ready(Err(_)) => Some(Step::Eof),
            Poll::Ready(Ok(())) => SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                match Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]) {
                    Poll::Pending => {
                        st.drained = false;
                        None
                    }
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => Some(Step::Eof),
                    Poll::Ready(Ok(n)) => {
                        st.drained = n < scratch.len();
                        if st.pending.is_empty() {
                            let (step, used) = process(app, id, st, &mut scratch[..n]);
                            if used < n {
                                st.pending = scratch[used..n].to_vec();
                            }
                            Some(step)
                        } else {
                            st.pending.extend_from_slice(&scratch[..n]);
                            Some(drain_pending(app, id, st))
                        }
                    }
                }
            }),
        };
        let from_read = step.is_some();
        let step = match step {
            None if !st.pending.is_empty() => {
                // Nothing to read. Leftover complete frames may still sit in
                // `pending` (after a message was handed out): parse them.
                Some(drain_pending(app, id, st))
            }
            other => other,
        };
        // What the socket holds now is paid for, or it goes.
        if !account(st) {
            app.metrics.buffer_refused.inc("ws_in");
            drop_inbound(st);
            shut(
                app,
                id,
                close::TRY_AGAIN,
                "server busy: buffer budget spent",
            );
            continue;
        }
        match (st.is_partial(), st.partial_deadline.is_some()) {
            (true, false) => {
                let limit = Duration::from_secs(app.cfg.header_timeout);
                st.partial_deadline = Some(Box::pin(async_io::Timer::after(limit)));
            }
            (false, true) => st.partial_deadline = None,
            _ => {}
        }
        match step {
            Some(Step::Eof) => return Poll::Ready(Event::Closed),
            Some(Step::Message(m)) => return Poll::Ready(Event::Message(m)),
            Some(Step::Wrote) => continue,
            Some(Step::Continue) if from_read || st.pending.is_empty() => continue,
            // Only an incomplete frame is left: wait for more bytes.
            Some(Step::Continue) | None => {}
        }
        // 3. Nothing to do until the socket is ready, unless a message
        //    started too long ago: then the socket goes.
        if let Some(t) = st.partial_deadline.as_mut()
            && t.as_mut().poll(cx).is_ready()
        {
            app.metrics.ws_message_timeouts.inc();
            drop_inbound(st);
            shut(app, id, close::POLICY, "message not completed in time");
            continue;
        }
        return Poll::Pending;
    }
}

enum Step {
    Continue,
    /// Something was queued (pong, close): flush before reading on.
    Wrote,
    Message(Vec<u8>),
    Eof,
}

fn drain_pending(app: &App, id: ConnId, st: &mut ConnState) -> Step {
    let mut buf = std::mem::take(&mut st.pending);
    let (step, used) = process(app, id, st, &mut buf);
    buf.drain(..used);
    if !buf.is_empty() {
        // Don't keep a big allocation for a few leftover bytes.
        if buf.capacity() > 2 * buf.len() + 64 {
            buf.shrink_to_fit();
        }
        st.pending = buf;
    }
    step
}

/// Parses frames from `data` until it runs out, a message completes, or the
/// socket must close. Returns what happened and how many bytes were used.
fn process(app: &App, id: ConnId, st: &mut ConnState, data: &mut [u8]) -> (Step, usize) {
    let max = app.cfg.max_message_bytes;
    let mut used = 0;
    let mut wrote = false;
    loop {
        let (frame, n) = match frame::parse(&mut data[used..], max) {
            Ok(Some(f)) => f,
            Ok(None) => return (if wrote { Step::Wrote } else { Step::Continue }, used),
            Err(FrameError(code, why)) => {
                shut(app, id, code, why);
                return (Step::Wrote, data.len());
            }
        };
        used += n;
        let now = Instant::now();
        app.hub.borrow_mut().touch(id, now);
        match st.session.on_frame(frame, now) {
            Action::None => {}
            Action::Message(message) => return (Step::Message(message), used),
            Action::Pong(payload) => {
                let queued = app
                    .ws
                    .borrow_mut()
                    .push_pong(id, payload, app.cfg.ws_queue_bytes);
                if let Err(e) = queued {
                    app.refuse_output(id, e);
                    return (Step::Wrote, data.len());
                }
                wrote = true;
            }
            Action::Dropped(how) => {
                app.metrics.rate_limited.inc("ws");
                match how {
                    Dropped::Quietly => {}
                    Dropped::Told => {
                        app.hub.borrow_mut().error(
                            id,
                            "rate_limited",
                            "too many messages; slow down",
                            None,
                        );
                        wrote = true;
                    }
                    Dropped::Closed => {
                        shut(app, id, close::POLICY, "rate limit exceeded");
                        return (Step::Wrote, data.len());
                    }
                }
            }
            Action::Close(code, why) => {
                shut(app, id, code, why);
                return (Step::Wrote, data.len());
            }
            Action::PeerClosed(code) => {
                app.metrics.ws_closed.inc(code);
                app.ws.borrow_mut().close(id, code, "", false);
                app.hub.borrow_mut().close(id, now);
                return (Step::Wrote, data.len());
            }
        }
    }
}
