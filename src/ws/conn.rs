//! One WebSocket after the upgrade: a small task that moves bytes.
//!
//! Idle cost is what matters (tens of thousands of bots sit here), so the
//! task holds no buffers while idle: reads go into one thread-local scratch
//! buffer; only a partial frame or fragmented message is copied into a
//! per-socket `Vec`, freed again once complete. Outbound frames wait in the
//! [`Registry`] entry, bounded by `ws_queue_bytes`: a reader too slow to
//! drain it is closed with 1013 rather than buffered without limit.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite, FutureExt};

use super::frame::{self, FrameError, Op, close};
use super::handshake::PreHello;
use crate::app::{App, ConnGuard};
use crate::net::Stream;
use crate::signal;
use crate::slots::{ConnId, IdAllocator, Slots};

/// Scratch read size; a frame larger than what is left is gathered in `pending`.
const READ_CHUNK: usize = 16 * 1024;
/// How long a closing socket may take to accept its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; READ_CHUNK]);
}

/// Outbound state of one socket, reachable from any task.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    out: VecDeque<Vec<u8>>,
    out_bytes: usize,
    sent: usize,
    waker: Option<Waker>,
    /// No more frames after the queued ones; close when flushed.
    closing: bool,
}

/// All open WebSockets, by never-reused id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    conns: Slots<Entry>,
    ids: IdAllocator,
    /// The socket whose task is running right now: it flushes its queue
    /// before it sleeps, so waking it would only cost a spurious poll.
    running: Option<ConnId>,
}

/// The socket's queue is over its bound.
#[derive(Debug)]
pub(crate) struct QueueFull;

impl Registry {
    pub(crate) fn insert(&mut self) -> ConnId {
        let id = self.ids.alloc();
        self.conns.insert(id, Entry::default());
        id
    }

    pub(crate) fn remove(&mut self, id: ConnId) {
        self.conns.remove(id);
        self.ids.release(id);
    }

    fn wake(e: &mut Entry, id: ConnId, running: Option<ConnId>) {
        if running == Some(id) {
            return;
        }
        if let Some(w) = e.waker.take() {
            w.wake();
        }
    }

    /// Queues a frame. Unknown ids (already gone) are ignored.
    pub(crate) fn push(
        &mut self,
        id: ConnId,
        frame: Vec<u8>,
        limit: usize,
    ) -> Result<(), QueueFull> {
        let Some(e) = self.conns.get_mut(id) else {
            return Ok(());
        };
        if e.closing {
            return Ok(());
        }
        if e.out_bytes + frame.len() > limit {
            return Err(QueueFull);
        }
        e.out_bytes += frame.len();
        e.out.push_back(frame);
        Self::wake(e, id, self.running);
        Ok(())
    }

    /// Queues a close frame after what is queued (or instead of it, when
    /// `discard`), and stops further output.
    pub(crate) fn close(&mut self, id: ConnId, code: u16, reason: &str, discard: bool) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        if e.closing {
            return;
        }
        if discard {
            // Keep a frame that is half written, or the stream would be corrupt.
            let keep = usize::from(e.sent > 0);
            e.out.truncate(keep);
            e.out_bytes = e.out.iter().map(Vec::len).sum();
        }
        let f = frame::close_frame(code, reason);
        e.out_bytes += f.len();
        e.out.push_back(f);
        e.closing = true;
        Self::wake(e, id, self.running);
    }

    /// Close frames to every socket (shutdown).
    pub(crate) fn close_all(&mut self, code: u16, reason: &str) {
        let ids = self.conns.ids();
        for id in ids {
            self.close(id, code, reason, false);
        }
    }
}

/// Per-socket state owned by its task.
struct ConnState {
    /// Bytes of an incomplete frame.
    pending: Vec<u8>,
    /// A fragmented text message being assembled.
    fragments: Option<Vec<u8>>,
    /// Facts from the upgrade, until `hello`.
    pre: Option<Box<PreHello>>,
    tokens: f32,
    last_refill: Instant,
    dropped: u32,
    close_timer: Option<Pin<Box<async_io::Timer>>>,
    /// The last read drained the socket: wait for readiness before reading
    /// again (a read now would only return EAGAIN — two of them with
    /// async-io's tick bookkeeping — before arming the poller).
    drained: bool,
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
    guard: ConnGuard,
) {
    let id = app.ws.borrow_mut().insert();
    app.hub.borrow_mut().open(id, Instant::now());
    let st = ConnState {
        pending: leftover,
        fragments: None,
        pre: Some(Box::new(pre)),
        tokens: app.cfg.ws_burst as f32,
        last_refill: Instant::now(),
        dropped: 0,
        close_timer: None,
        drained: false,
    };
    let task_app = app.clone();
    app.spawn(run(task_app, id, stream, st, guard));
}

async fn run(app: Rc<App>, id: ConnId, mut stream: Stream, mut st: ConnState, guard: ConnGuard) {
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
                Box::pin(signal::on_message(&app, id, &text, &mut st.pre)).await;
                // We poll again right away and flush: no self-wake needed.
                app.ws.borrow_mut().running = Some(id);
                app.deliver();
                app.ws.borrow_mut().running = None;
            }
            Event::Closed => break,
        }
    }
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
                            e.out_bytes -= front.len();
                            e.out.pop_front();
                            e.sent = 0;
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
        match step {
            None => {
                // Nothing to read. Leftover complete frames may still sit in
                // `pending` (after a message was handed out): parse them.
                if !st.pending.is_empty() {
                    match drain_pending(app, id, st) {
                        Step::Message(m) => return Poll::Ready(Event::Message(m)),
                        Step::Continue if st.pending.is_empty() => continue,
                        Step::Continue => return Poll::Pending,
                        Step::Wrote => continue,
                        Step::Eof => return Poll::Ready(Event::Closed),
                    }
                }
                return Poll::Pending;
            }
            Some(Step::Eof) => return Poll::Ready(Event::Closed),
            Some(Step::Message(m)) => return Poll::Ready(Event::Message(m)),
            Some(Step::Continue | Step::Wrote) => continue,
        }
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
        app.hub.borrow_mut().touch(id, Instant::now());
        match frame.op {
            Op::Ping => {
                let mut pong = Vec::with_capacity(2 + frame.payload.len());
                frame::encode(Op::Pong, frame.payload, &mut pong);
                let _ = app.ws.borrow_mut().push(id, pong, usize::MAX);
                wrote = true;
            }
            Op::Pong => {}
            Op::Close => {
                let code = match frame::check_close(frame.payload) {
                    Ok(c) => c,
                    Err(FrameError(c, _)) => c,
                };
                app.metrics.ws_closed.inc(code);
                app.ws.borrow_mut().close(id, code, "", false);
                app.hub.borrow_mut().close(id, Instant::now());
                return (Step::Wrote, data.len());
            }
            Op::Binary => {
                shut(app, id, close::UNSUPPORTED, "only JSON text messages");
                return (Step::Wrote, data.len());
            }
            Op::Text | Op::Continuation => {
                let is_start = frame.op == Op::Text;
                let message = match (&mut st.fragments, is_start) {
                    (None, true) if frame.fin => Some(frame.payload.to_vec()),
                    (None, true) => {
                        st.fragments = Some(frame.payload.to_vec());
                        None
                    }
                    (Some(buf), false) => {
                        if buf.len() + frame.payload.len() > max {
                            shut(app, id, close::TOO_BIG, "message too big");
                            return (Step::Wrote, data.len());
                        }
                        buf.extend_from_slice(frame.payload);
                        if frame.fin { st.fragments.take() } else { None }
                    }
                    _ => {
                        shut(app, id, close::PROTOCOL, "unexpected continuation");
                        return (Step::Wrote, data.len());
                    }
                };
                let Some(message) = message else { continue };
                if !take_token(app, st) {
                    st.dropped += 1;
                    app.metrics.rate_limited.inc("ws");
                    if st.dropped == 1 || st.dropped.is_multiple_of(20) {
                        app.hub.borrow_mut().error(
                            id,
                            "rate_limited",
                            "too many messages; slow down",
                            None,
                        );
                        wrote = true;
                    }
                    if st.dropped > 200 {
                        shut(app, id, close::POLICY, "rate limit exceeded");
                        return (Step::Wrote, data.len());
                    }
                    continue;
                }
                return (Step::Message(message), used);
            }
        }
    }
}

fn take_token(app: &App, st: &mut ConnState) -> bool {
    let rate = app.cfg.ws_rate as f32;
    if rate == 0.0 {
        return true;
    }
    let now = Instant::now();
    let dt = now.saturating_duration_since(st.last_refill).as_secs_f32();
    st.last_refill = now;
    st.tokens = (st.tokens + dt * rate).min(app.cfg.ws_burst.max(1) as f32);
    if st.tokens >= 1.0 {
        st.tokens -= 1.0;
        true
    } else {
        false
    }
}
