//! `botcall._native`: thin PyO3 bindings over `botcall-sdk`. Everything
//! (registration, presence, reconnect, attestation checks, WebRTC, Opus,
//! resampling) is the Rust SDK's; this crate only moves values across.
//!
//! Async methods return an `asyncio.Future` of the running loop. The Rust
//! future runs on one shared background thread (an `async-executor` on
//! `async-io`, no GIL held while it waits or works) and hands its result
//! back with `loop.call_soon_threadsafe`. No Python thread per call.
//! The typed exceptions live in `botcall/errors.py`; Rust raises them by name.
#![allow(clippy::useless_conversion)] // PyO3 macro expansions

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use botcall_sdk::audio::{PcmDecoder, PcmEncoder};
use botcall_sdk::{
    Bot, BotConfig, BotError, Call, EndReason, HumanAttestation, HvPolicy, Incoming, load_key,
    register_with_discovery,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

type Produce = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

fn executor() -> &'static async_executor::Executor<'static> {
    static EX: OnceLock<&'static async_executor::Executor<'static>> = OnceLock::new();
    EX.get_or_init(|| {
        let ex: &'static async_executor::Executor<'static> =
            Box::leak(Box::new(async_executor::Executor::new()));
        std::thread::Builder::new()
            .name("botcall-py".into())
            .spawn(move || async_io::block_on(ex.run(futures_lite::future::pending::<()>())))
            .expect("start the botcall-py thread");
        ex
    })
}

/// Raises `botcall.errors.<name>(message)`.
fn raise(py: Python<'_>, name: &str, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    match py
        .import("botcall.errors")
        .and_then(|m| m.getattr(name))
        .and_then(|c| c.call1((msg.clone(),)))
    {
        Ok(v) => PyErr::from_value(v),
        Err(e) => e,
    }
}

/// The Python exception for an SDK error.
fn to_py(py: Python<'_>, e: &BotError) -> PyErr {
    let text = e.to_string();
    match e {
        BotError::Config(_) => raise(py, "ConfigError", text),
        BotError::Key(_) => raise(py, "AuthError", format!("the bot key is unusable: {text}")),
        BotError::Http {
            status: 401 | 403, ..
        } => raise(
            py,
            "AuthError",
            format!("the daemon refused the bot: {text}"),
        ),
        BotError::Refused { code, .. } if code == "unauthorized" => raise(
            py,
            "AuthError",
            format!("the daemon refused the bot: {text}"),
        ),
        BotError::Io { .. }
        | BotError::Http { .. }
        | BotError::Timeout(_)
        | BotError::WebSocket(_) => raise(
            py,
            "DaemonUnavailable",
            format!("cannot reach the daemon: {text}"),
        ),
        BotError::Ended(r) => ended(py, r),
        BotError::Closed => raise(py, "BotClosed", "the bot was shut down"),
        BotError::CallRefused { .. } => raise(py, "CallRefused", text),
        _ => raise(py, "BotcallError", text),
    }
}

fn ended(py: Python<'_>, r: &EndReason) -> PyErr {
    let e = raise(py, "CallEnded", format!("the call ended: {r}"));
    let v = e.value(py);
    let _ = v.setattr("reason", r.code());
    let _ = v.setattr("detail", r.detail());
    e
}

/// Rust futures started for Python and not yet finished or cancelled.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Counts one running future in [`RUNNING`] while it lives.
struct Running;

impl Running {
    fn new() -> Self {
        RUNNING.fetch_add(1, Ordering::Relaxed);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The Rust side of one Python future: its done-callback. When the Python
/// future was cancelled (`task.cancel()`, `asyncio.wait_for` timing out),
/// this drops the Rust future at its await point, so a cancelled
/// `next_call()` does not go on to take (and drop) the next call.
#[pyclass(module = "botcall._native", frozen)]
struct OnDone {
    task: Mutex<Option<async_executor::Task<()>>>,
}

#[pymethods]
impl OnDone {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        let cancelled: bool = fut.call_method0("cancelled")?.extract()?;
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            if cancelled {
                drop(t); // cancels; never blocks (async-task)
            } else {
                t.detach();
            }
        }
        Ok(())
    }
}

/// Runs `fut` on the SDK side and returns an `asyncio.Future` for its result.
/// Cancelling that future cancels `fut`.
fn spawn<F>(py: Python<'_>, fut: F) -> PyResult<Py<PyAny>>
where
    F: Future<Output = Produce> + Send + 'static,
{
    let lp = py.import("asyncio")?.call_method0("get_running_loop")?;
    let pyfut = lp.call_method0("create_future")?;
    let lp: Py<PyAny> = lp.unbind();
    let out: Py<PyAny> = pyfut.clone().unbind();
    let running = Running::new();
    let task = executor().spawn(async move {
        let _running = running;
        let produce = fut.await;
        Python::attach(|py| {
            let (ok, val) = match produce(py) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            let res = py
                .import("botcall._util")
                .and_then(|m| m.getattr("resolve"))
                .and_then(|resolve| {
                    lp.bind(py)
                        .call_method1("call_soon_threadsafe", (resolve, &out, ok, val))
                });
            // The loop is closed: nobody waits any more.
            drop(res);
        });
    });
    let on_done = Py::new(
        py,
        OnDone {
            task: Mutex::new(Some(task)),
        },
    )?;
    pyfut.call_method1("add_done_callback", (on_done,))?;
    Ok(pyfut.unbind())
}

/// How many Rust futures started for Python are still running (tests check
/// that cancelled and finished ones are gone).
#[pyfunction]
fn running_tasks() -> usize {
    RUNNING.load(Ordering::Relaxed)
}

fn err_produce(e: BotError) -> Produce {
    Box::new(move |py| Err(to_py(py, &e)))
}

/// A registered bot (`botcall.Bot` wraps it).
#[pyclass(module = "botcall._native", frozen)]
struct NativeBot {
    /// `None` once shut down.
    bot: Mutex<Option<Arc<Bot>>>,
    agent_id: String,
    /// Closed by `shutdown`: wakes every pending `next_call` with `BotClosed`.
    closed: async_channel::Sender<()>,
    on_close: async_channel::Receiver<()>,
}

impl NativeBot {
    fn new(bot: Bot) -> Self {
        let (closed, on_close) = async_channel::bounded(1);
        NativeBot {
            agent_id: bot.agent_id().to_string(),
            bot: Mutex::new(Some(Arc::new(bot))),
            closed,
            on_close,
        }
    }

    fn bot(&self, py: Python<'_>) -> PyResult<Arc<Bot>> {
        self.bot
            .lock()
            .ok()
            .and_then(|b| b.clone())
            .ok_or_else(|| raise(py, "BotClosed", "the bot was shut down"))
    }
}

#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (daemon, key, agent_id=None, name=None, listed=None, require_human=false, max_calls=1, media_timeout=None, ca_file=None))]
fn connect(
    py: Python<'_>,
    daemon: String,
    key: String,
    agent_id: Option<String>,
    name: Option<String>,
    listed: Option<bool>,
    require_human: bool,
    max_calls: u8,
    media_timeout: Option<f64>,
    ca_file: Option<String>,
) -> PyResult<Py<PyAny>> {
    let key = match load_key(&key) {
        Ok(k) => k,
        Err(BotError::Io { message, .. }) => {
            return Err(raise(py, "ConfigError", format!("the key file: {message}")));
        }
        Err(e) => return Err(to_py(py, &e)),
    };
    let mut cfg = BotConfig::new(daemon, key).max_calls(max_calls);
    if let Some(id) = agent_id {
        cfg = cfg.agent_id(id);
    }
    if let Some(n) = name {
        cfg = cfg.name(n);
    }
    if let Some(l) = listed {
        cfg = cfg.listed(l);
    }
    if require_human {
        cfg = cfg.policy(HvPolicy::VERIFIED);
    }
    if let Some(t) = media_timeout {
        if !(t.is_finite() && t > 0.0) {
            return Err(raise(
                py,
                "ConfigError",
                "media_timeout must be > 0 seconds",
            ));
        }
        cfg = cfg.media_timeout(Duration::from_secs_f64(t));
    }
    if let Some(ca) = ca_file {
        cfg = cfg.tls_ca_file(ca);
    }
    spawn(py, async move {
        match register_with_discovery(cfg).await {
            Ok(bot) => {
                Box::new(move |py: Python<'_>| Ok(Py::new(py, NativeBot::new(bot))?.into_any()))
                    as Produce
            }
            Err(e) => err_produce(e),
        }
    })
}

#[pymethods]
impl NativeBot {
    #[getter]
    fn agent_id(&self) -> String {
        self.agent_id.clone()
    }

    /// `{online, sessions, connect_attempts, refused_calls, last_error}`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = match self.bot(py) {
            Ok(b) => b.status(),
            Err(_) => Default::default(),
        };
        let d = PyDict::new(py);
        d.set_item("online", s.online)?;
        d.set_item("sessions", s.sessions)?;
        d.set_item("connect_attempts", s.connect_attempts)?;
        d.set_item("refused_calls", s.refused_calls)?;
        d.set_item("last_error", s.last_error)?;
        Ok(d)
    }

    /// The next verified call, ringing (refused ones are skipped here).
    fn next_call(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let bot = self.bot(py)?;
        let on_close = self.on_close.clone();
        spawn(py, async move {
            let ringing = async {
                loop {
                    match bot.next_incoming().await {
                        Err(e) if e.is_refused_call() => continue,
                        r => return r,
                    }
                }
            };
            let closed = async {
                let _ = on_close.recv().await;
                Err(BotError::Closed)
            };
            match futures_lite::future::or(closed, ringing).await {
                Ok(inc) => {
                    let bot = Arc::downgrade(&bot);
                    Box::new(move |py: Python<'_>| {
                        Ok(Py::new(py, NativeIncoming::new(inc, bot))?.into_any())
                    }) as Produce
                }
                Err(e) => err_produce(e),
            }
        })
    }

    /// Hangs up every call and goes offline; pending `next_call`s raise
    /// `BotClosed`. The future completes once the SDK has shut down (≤ 2 s).
    fn shutdown(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.closed.close();
        let bot = self.bot.lock().ok().and_then(|mut b| b.take());
        spawn(py, async move {
            if let Some(mut bot) = bot {
                // The woken next_calls drop their handles in a moment; the
                // last handle dropped shuts the bot down in any case.
                for _ in 0..200 {
                    match Arc::try_unwrap(bot) {
                        Ok(b) => {
                            b.shutdown().await;
                            break;
                        }
                        Err(b) => bot = b,
                    }
                    async_io::Timer::after(Duration::from_millis(10)).await;
                }
            }
            Box::new(|py: Python<'_>| Ok(py.None())) as Produce
        })
    }
}

/// The attestation as a dict: `{session, issuer, hv, fingerprint, call_id, iat, exp}`.
fn caller_dict<'py>(py: Python<'py>, a: &HumanAttestation) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("session", a.caller.as_str())?;
    d.set_item("issuer", a.iss.as_str())?;
    d.set_item("hv", a.hv.as_str())?;
    d.set_item("fingerprint", a.fp.as_str())?;
    d.set_item("call_id", a.call_id.as_str())?;
    d.set_item("iat", a.iat)?;
    d.set_item("exp", a.exp)?;
    Ok(d)
}

/// A verified call that rings until `accept` or `reject` (the SDK's
/// [`Incoming`], answered with `Bot::answer` / `Bot::reject`).
#[pyclass(module = "botcall._native", frozen)]
struct NativeIncoming {
    id: String,
    caller: HumanAttestation,
    /// `None` once answered or rejected; dropped undecided, the SDK rejects it.
    inc: Mutex<Option<Incoming>>,
    /// Weak, so a ringing call does not keep a shut-down bot alive.
    bot: Weak<Bot>,
}

impl NativeIncoming {
    fn new(inc: Incoming, bot: Weak<Bot>) -> Self {
        NativeIncoming {
            id: inc.id().to_string(),
            caller: inc.caller().clone(),
            inc: Mutex::new(Some(inc)),
            bot,
        }
    }

    /// The bot and the ringing call, taken (once).
    fn take(&self, py: Python<'_>) -> PyResult<(Arc<Bot>, Incoming)> {
        let bot = self
            .bot
            .upgrade()
            .ok_or_else(|| raise(py, "BotClosed", "the bot was shut down"))?;
        let inc = self
            .inc
            .lock()
            .ok()
            .and_then(|mut i| i.take())
            .ok_or_else(|| {
                raise(
                    py,
                    "BotcallError",
                    "the call was already answered or rejected",
                )
            })?;
        Ok((bot, inc))
    }
}

#[pymethods]
impl NativeIncoming {
    #[getter]
    fn id(&self) -> String {
        self.id.clone()
    }

    fn caller<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        caller_dict(py, &self.caller)
    }

    /// Answers: a future for the `NativeCall`.
    fn accept(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (bot, inc) = self.take(py)?;
        spawn(py, async move {
            match bot.answer(inc).await {
                Ok(call) => Box::new(move |py: Python<'_>| {
                    Ok(Py::new(
                        py,
                        NativeCall {
                            call: Arc::new(call),
                        },
                    )?
                    .into_any())
                }) as Produce,
                Err(e) => err_produce(e),
            }
        })
    }

    /// Turns the call down with `reason` (1..=64 bytes); a bad reason leaves
    /// it ringing.
    fn reject(&self, py: Python<'_>, reason: String) -> PyResult<Py<PyAny>> {
        let max = botcall_sdk::botcall_core::protocol::MAX_REASON_LEN;
        if reason.is_empty() || reason.len() > max {
            return Err(raise(
                py,
                "ConfigError",
                format!("a reject reason is 1..={max} bytes, not {}", reason.len()),
            ));
        }
        let (bot, inc) = self.take(py)?;
        spawn(py, async move {
            match bot.reject(inc, &reason).await {
                Ok(()) => Box::new(|py: Python<'_>| Ok(py.None())) as Produce,
                Err(e) => err_produce(e),
            }
        })
    }
}

/// One call (`botcall.Call` wraps it).
#[pyclass(module = "botcall._native", frozen)]
struct NativeCall {
    call: Arc<Call>,
}

#[pymethods]
impl NativeCall {
    #[getter]
    fn id(&self) -> String {
        self.call.id().to_string()
    }

    /// The verified attestation: `{session, issuer, hv, fingerprint, iat, exp, call_id}`.
    fn caller<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        caller_dict(py, self.call.caller())
    }

    /// `(code, detail)` once ended, else `None`.
    fn end_reason(&self) -> Option<(String, Option<String>)> {
        self.call
            .end_reason()
            .map(|r| (r.code().to_string(), r.detail().map(str::to_string)))
    }

    fn is_connected(&self) -> bool {
        self.call.is_connected()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.call.stats();
        let d = PyDict::new(py);
        d.set_item("connected", s.connected)?;
        d.set_item("rx_frames", s.rx_frames)?;
        d.set_item("tx_frames", s.tx_frames)?;
        d.set_item("rx_lost", s.rx_lost)?;
        d.set_item("rx_dropped", s.rx_dropped)?;
        d.set_item("tx_skipped", s.tx_skipped)?;
        Ok(d)
    }

    fn recv_opus(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let call = self.call.clone();
        spawn(py, async move {
            match call.receive_audio_opus().await {
                Ok(f) => Box::new(move |py: Python<'_>| {
                    Ok(PyBytes::new(py, &f.data).into_any().unbind())
                }) as Produce,
                Err(e) => err_produce(e),
            }
        })
    }

    fn send_opus(&self, py: Python<'_>, packet: Vec<u8>) -> PyResult<Py<PyAny>> {
        let call = self.call.clone();
        spawn(py, async move {
            match call.send_audio_opus(&packet).await {
                Ok(()) => Box::new(|py: Python<'_>| Ok(py.None())) as Produce,
                Err(e) => err_produce(e),
            }
        })
    }

    fn hangup(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let call = self.call.clone();
        spawn(py, async move {
            call.hangup().await;
            Box::new(|py: Python<'_>| Ok(py.None())) as Produce
        })
    }

    fn ended(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let call = self.call.clone();
        spawn(py, async move {
            let r = call.ended().await;
            Box::new(move |py: Python<'_>| Ok(r.code().into_pyobject(py)?.into_any().unbind()))
                as Produce
        })
    }

    fn audio_input(&self, py: Python<'_>, sample_rate: u32) -> PyResult<NativeInput> {
        let dec = PcmDecoder::new(sample_rate).map_err(|e| raise(py, "ConfigError", e.0))?;
        Ok(NativeInput {
            call: self.call.clone(),
            dec: Arc::new(Mutex::new(dec)),
        })
    }

    fn audio_output(&self, py: Python<'_>, sample_rate: u32) -> PyResult<NativeOutput> {
        let enc = PcmEncoder::new(sample_rate).map_err(|e| raise(py, "ConfigError", e.0))?;
        Ok(NativeOutput {
            call: self.call.clone(),
            enc: Arc::new(Mutex::new(enc)),
        })
    }
}

/// Received audio as PCM16 at the application's rate.
#[pyclass(module = "botcall._native", frozen)]
struct NativeInput {
    call: Arc<Call>,
    dec: Arc<Mutex<PcmDecoder>>,
}

#[pymethods]
impl NativeInput {
    /// The next 20 ms frame as PCM16 bytes; `None` once the call is over.
    fn next(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let call = self.call.clone();
        let dec = self.dec.clone();
        spawn(py, async move {
            let frame = match call.receive_audio_opus().await {
                Ok(f) => f,
                Err(BotError::Ended(_)) => {
                    return Box::new(|py: Python<'_>| Ok(py.None())) as Produce;
                }
                Err(e) => return err_produce(e),
            };
            let mut pcm = Vec::with_capacity(960);
            let r = match dec.lock() {
                Ok(mut d) => d.decode(Some(&frame.data), &mut pcm),
                Err(_) => return err_produce(BotError::Media("decoder poisoned".into())),
            };
            // A corrupt packet: conceal rather than end the stream.
            if r.is_err()
                && let Ok(mut d) = dec.lock()
            {
                pcm.clear();
                let _ = d.decode(None, &mut pcm);
            }
            let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
            Box::new(move |py: Python<'_>| Ok(PyBytes::new(py, &bytes).into_any().unbind()))
                as Produce
        })
    }
}

/// Audio to send, PCM16 at the application's rate.
#[pyclass(module = "botcall._native", frozen)]
struct NativeOutput {
    call: Arc<Call>,
    enc: Arc<Mutex<PcmEncoder>>,
}

#[pymethods]
impl NativeOutput {
    /// Encodes and queues `pcm` (PCM16 little-endian mono); the future
    /// completes once all of it is queued (the SDK holds ~160 ms).
    fn write(&self, py: Python<'_>, pcm: &[u8]) -> PyResult<Py<PyAny>> {
        if !pcm.len().is_multiple_of(2) {
            return Err(raise(
                py,
                "ConfigError",
                "PCM16 data must have an even number of bytes",
            ));
        }
        let samples: Vec<i16> = pcm
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let call = self.call.clone();
        let enc = self.enc.clone();
        spawn(py, async move {
            // Encoding happens here, on the SDK side, without the GIL.
            let packets = match enc.lock() {
                Ok(mut e) => e.push(&samples),
                Err(_) => return err_produce(BotError::Media("encoder poisoned".into())),
            };
            let packets = match packets {
                Ok(p) => p,
                Err(e) => return err_produce(BotError::Media(e.0)),
            };
            for p in packets {
                if let Err(e) = call.send_audio_opus(&p).await {
                    return err_produce(e);
                }
            }
            Box::new(|py: Python<'_>| Ok(py.None())) as Produce
        })
    }

    /// Drops what is queued and not yet sent (barge-in).
    fn clear(&self) {
        if let Ok(mut e) = self.enc.lock() {
            e.clear();
        }
        self.call.clear_audio();
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(running_tasks, m)?)?;
    m.add_class::<OnDone>()?;
    m.add_class::<NativeBot>()?;
    m.add_class::<NativeIncoming>()?;
    m.add_class::<NativeCall>()?;
    m.add_class::<NativeInput>()?;
    m.add_class::<NativeOutput>()?;
    Ok(())
}
