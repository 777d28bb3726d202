// Package botcall writes BotCall bots in Go: a thin cgo layer over the C ABI
// (botcall.h, libbotcall from botcall-ffi), which runs the Rust SDK — the
// protocol, the attestation check and WebRTC are not reimplemented here.
//
//	bot, err := botcall.Connect(ctx, "http://127.0.0.1:8080", botcall.Key{File: "bot.jwk"}, botcall.Options{AgentID: "echo-bot"})
//	call, err := bot.NextCall(ctx) // verified, ringing
//	err = call.Answer()
//	n, err := call.Read(pcm)       // PCM16 LE, io.Reader; io.EOF when the call ends
//	n, err = call.Write(pcm)       // io.Writer
//
// Blocking methods take a context.Context: cancelling it (or its deadline)
// ends the wait with an error matching both ErrCancelled and ctx.Err().
// Build: cargo build -p botcall-ffi first; cgo links target/debug/libbotcall
// (set CGO_LDFLAGS for another location). See docs/ffi.md.
package botcall

/*
#cgo CFLAGS: -I${SRCDIR}/../../botcall-ffi/include
#cgo LDFLAGS: -L${SRCDIR}/../../target/debug -lbotcall -Wl,-rpath,${SRCDIR}/../../target/debug
#include <stdlib.h>
#include "botcall.h"
*/
import "C"

import (
	"context"
	"io"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// ABIVersion is the C ABI version this package was built against.
const ABIVersion = uint32(C.BOTCALL_ABI_VERSION)

// LibraryABIVersion is the ABI version of the loaded libbotcall.
func LibraryABIVersion() uint32 { return uint32(C.botcall_version()) }

// Policy is a set of accepted human-check methods.
type Policy uint32

// Human-check methods a bot accepts (0: all).
const (
	PolicyNone     Policy = 1
	PolicyPow      Policy = 2
	PolicyWebAuthn Policy = 4
	PolicyVerified        = PolicyPow | PolicyWebAuthn
)

// Key is the bot's signing key: a JWK file (botcalld keygen) or the JWK text.
type Key struct {
	File string
	JWK  []byte
}

// Options for Connect; the zero value is the defaults.
type Options struct {
	AgentID      string        // empty: the key's thumbprint (open registration)
	Name         string        // display name
	Listed       *bool         // nil: the daemon's default
	MaxCalls     int           // 0: 1
	Policy       Policy        // 0: every method
	MediaTimeout time.Duration // 0: 8 s
	TLSCAFile    string        // CA file for an https:// daemon
}

// call runs f on a locked OS thread so botcall_last_error reads the same
// thread's message.
func call(op string, f func() C.BotcallStatus) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return lastError(op, f())
}

func cstring(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

// Bot is a registered bot, online until Close.
type Bot struct {
	h       *C.BotcallBot
	agentID string
	life    life
}

// Connect registers the bot with the daemon and brings it online. It blocks
// until the daemon's welcome or the first failure (ErrKey, ErrAuth,
// ErrUnavailable, ErrConfig). ctx is checked before it starts; the attempt
// itself is bounded by the SDK's timeouts (10 s per connection), not by ctx.
//
// Read and Write have no context: they end when the call ends (io.EOF,
// ErrEnded), so hanging up from another goroutine stops them.
func Connect(ctx context.Context, daemonURL string, key Key, opts Options) (*Bot, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: "connect", Code: ErrCancelled, Message: err.Error(), cause: err}
	}
	var o C.BotcallOptions
	C.botcall_options_init(&o)
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	str := func(s string) *C.char {
		p := cstring(s)
		if p != nil {
			frees = append(frees, unsafe.Pointer(p))
		}
		return p
	}
	o.name = str(opts.Name)
	if opts.Listed != nil {
		o.listed = 0
		if *opts.Listed {
			o.listed = 1
		}
	}
	o.max_calls = C.uint32_t(opts.MaxCalls)
	o.policy = C.uint32_t(opts.Policy)
	o.media_timeout_ms = C.uint32_t(opts.MediaTimeout / time.Millisecond)
	o.tls_ca_file = str(opts.TLSCAFile)
	url, file, agent := str(daemonURL), str(key.File), str(opts.AgentID)
	var jwk *C.uint8_t
	if len(key.JWK) > 0 {
		p := C.CBytes(key.JWK)
		frees = append(frees, p)
		jwk = (*C.uint8_t)(p)
	}
	var h *C.BotcallBot
	err := call("connect", func() C.BotcallStatus {
		return C.botcall_bot_connect(url, file, jwk, C.size_t(len(key.JWK)), agent, &o, &h)
	})
	if err != nil {
		return nil, err
	}
	var buf [C.BOTCALL_ID_CAP]C.char
	C.botcall_bot_agent_id(h, &buf[0], C.size_t(len(buf)), nil)
	return &Bot{h: h, agentID: C.GoString(&buf[0])}, nil
}

// AgentID is the bot's agent id.
func (b *Bot) AgentID() string { return b.agentID }

// NextCall waits for the next call whose attestation verified and returns
// it ringing: Answer or Reject it, then Close it.
func (b *Bot) NextCall(ctx context.Context) (*Call, error) {
	if !b.life.enter() {
		return nil, closedError("next_call")
	}
	defer b.life.leave()
	var h *C.BotcallCall
	err := wait(ctx, &b.life, "next_call", func(tok *C.BotcallCancel) C.BotcallStatus {
		return C.botcall_bot_next_call(b.h, -1, tok, &h)
	})
	if err != nil {
		return nil, err
	}
	c := &Call{h: h}
	var buf [C.BOTCALL_ID_CAP]C.char
	C.botcall_call_id(h, &buf[0], C.size_t(len(buf)), nil)
	c.id = C.GoString(&buf[0])
	var cl C.BotcallClaims
	C.botcall_call_claims(h, &cl)
	c.claims = Claims{
		Issuer:      C.GoString(&cl.issuer[0]),
		AgentID:     C.GoString(&cl.agent_id[0]),
		Session:     C.GoString(&cl.session[0]),
		CallID:      C.GoString(&cl.call_id[0]),
		HV:          C.GoString(&cl.hv[0]),
		Fingerprint: C.GoString(&cl.fingerprint[0]),
		IssuedAt:    time.Unix(int64(cl.iat), 0),
		Expires:     time.Unix(int64(cl.exp), 0),
	}
	return c, nil
}

// Close hangs up the bot's calls, goes offline and frees the bot. A
// NextCall blocked on it returns ErrClosed first.
func (b *Bot) Close() error {
	if b.life.close() {
		C.botcall_bot_free(b.h)
		b.h = nil
	}
	return nil
}

// Claims are the verified human attestation of a call.
type Claims struct {
	Issuer, AgentID, Session, CallID, HV, Fingerprint string
	IssuedAt, Expires                                 time.Time
}

// Call is one call. Read and Write move PCM16 (little-endian, mono) at the
// rate set by SetPCMRate (default 48000); ReadPacket and WritePacket move
// Opus packets. One goroutine may read while another writes. Read and
// Write take no context: they end when the call does (io.EOF, ErrEnded);
// Hangup or Close from another goroutine stops them.
type Call struct {
	life   life
	h      *C.BotcallCall
	id     string
	claims Claims
	rmu    sync.Mutex
	rbuf   []C.int16_t
	wmu    sync.Mutex
	odd    []byte // a byte of a sample split across Writes
}

// ID is the call id.
func (c *Call) ID() string { return c.id }

// Claims is who calls, as the daemon attested and the SDK verified.
func (c *Call) Claims() Claims { return c.claims }

// Answer answers a ringing call; media connects in the background.
func (c *Call) Answer() error {
	if !c.life.enter() {
		return closedError("answer")
	}
	defer c.life.leave()
	return call("answer", func() C.BotcallStatus { return C.botcall_call_answer(c.h) })
}

// Reject refuses a ringing call with reason (≤ 64 bytes; "" is "busy").
func (c *Call) Reject(reason string) error {
	if !c.life.enter() {
		return closedError("reject")
	}
	defer c.life.leave()
	r := cstring(reason)
	defer C.free(unsafe.Pointer(r))
	return call("reject", func() C.BotcallStatus { return C.botcall_call_reject(c.h, r) })
}

// SetPCMRate sets the sample rate (8000–48000 Hz) of Read and Write.
func (c *Call) SetPCMRate(rate int) error {
	if !c.life.enter() {
		return closedError("set_pcm_rate")
	}
	defer c.life.leave()
	return call("set_pcm_rate", func() C.BotcallStatus {
		return C.botcall_call_set_pcm_rate(c.h, C.uint32_t(rate))
	})
}

// ReadPacket returns the next received Opus packet (20 ms).
func (c *Call) ReadPacket(ctx context.Context) ([]byte, error) {
	if !c.life.enter() {
		return nil, closedError("recv_opus")
	}
	defer c.life.leave()
	var buf [1275]byte
	var n C.size_t
	err := wait(ctx, &c.life, "recv_opus", func(tok *C.BotcallCancel) C.BotcallStatus {
		return C.botcall_call_recv_opus(c.h, -1, tok, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)
	})
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), buf[:n]...), nil
}

// WritePacket queues one Opus packet for sending (paced at 20 ms; waits
// while ~160 ms are queued).
func (c *Call) WritePacket(ctx context.Context, pkt []byte) error {
	if !c.life.enter() {
		return closedError("send_opus")
	}
	defer c.life.leave()
	if len(pkt) == 0 {
		return &Error{Op: "send_opus", Code: ErrInvalidArgument, Message: "an empty packet"}
	}
	return wait(ctx, &c.life, "send_opus", func(tok *C.BotcallCancel) C.BotcallStatus {
		return C.botcall_call_send_opus(c.h, (*C.uint8_t)(unsafe.Pointer(&pkt[0])), C.size_t(len(pkt)), -1, tok)
	})
}

// Read reads received audio as PCM16 little-endian bytes (io.Reader),
// waiting for the next 20 ms frame when none is buffered. It returns io.EOF
// once the call has ended.
func (c *Call) Read(p []byte) (int, error) {
	if !c.life.enter() {
		return 0, closedError("recv_pcm")
	}
	defer c.life.leave()
	if len(p) < 2 {
		return 0, io.ErrShortBuffer
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	want := len(p) / 2
	if cap(c.rbuf) < want {
		c.rbuf = make([]C.int16_t, want)
	}
	buf := c.rbuf[:want]
	var n C.size_t
	err := wait(context.Background(), &c.life, "recv_pcm", func(tok *C.BotcallCancel) C.BotcallStatus {
		return C.botcall_call_recv_pcm(c.h, -1, tok, &buf[0], C.size_t(want), &n)
	})
	if e, ok := err.(*Error); ok && e.Code == ErrEnded {
		return 0, io.EOF
	} else if err != nil {
		return 0, err
	}
	for i, s := range buf[:n] {
		p[2*i] = byte(uint16(s))
		p[2*i+1] = byte(uint16(s) >> 8)
	}
	return int(n) * 2, nil
}

// Write sends PCM16 little-endian bytes (io.Writer), encoded to Opus in
// 20 ms packets and paced by the call.
func (c *Call) Write(p []byte) (int, error) {
	if !c.life.enter() {
		return 0, closedError("send_pcm")
	}
	defer c.life.leave()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	data := p
	if len(c.odd) > 0 {
		data = append(append([]byte(nil), c.odd...), p...)
		c.odd = c.odd[:0]
	}
	n := len(data) / 2
	if len(data)%2 == 1 {
		c.odd = append(c.odd[:0], data[len(data)-1])
	}
	if n == 0 {
		return len(p), nil
	}
	samples := make([]C.int16_t, n)
	for i := range samples {
		samples[i] = C.int16_t(int16(uint16(data[2*i]) | uint16(data[2*i+1])<<8))
	}
	err := wait(context.Background(), &c.life, "send_pcm", func(tok *C.BotcallCancel) C.BotcallStatus {
		return C.botcall_call_send_pcm(c.h, &samples[0], C.size_t(n), -1, tok)
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Hangup hangs up (or rejects a ringing call).
func (c *Call) Hangup() error {
	if !c.life.enter() {
		return closedError("hangup")
	}
	defer c.life.leave()
	return call("hangup", func() C.BotcallStatus { return C.botcall_call_hangup(c.h) })
}

// Wait blocks until the call is over and says why.
func (c *Call) Wait(ctx context.Context) (code, detail string, err error) {
	if !c.life.enter() {
		return "", "", closedError("wait_ended")
	}
	defer c.life.leave()
	err = wait(ctx, &c.life, "wait_ended", func(tok *C.BotcallCancel) C.BotcallStatus {
		return C.botcall_call_wait_ended(c.h, -1, tok)
	})
	if err != nil {
		return "", "", err
	}
	code, detail = c.EndReason()
	return code, detail, nil
}

// EndReason is why the call ended ("remote_hangup", "local", "rejected", …)
// and the reason text that came with it; both empty while it goes on.
func (c *Call) EndReason() (code, detail string) {
	if !c.life.enter() {
		return "", ""
	}
	defer c.life.leave()
	var cb [64]C.char
	var db [128]C.char
	C.botcall_call_end_reason(c.h, &cb[0], C.size_t(len(cb)), &db[0], C.size_t(len(db)))
	return C.GoString(&cb[0]), C.GoString(&db[0])
}

// Close frees the call: hangs up an answered call that goes on, rejects a
// ringing one. Reads, writes and waits blocked on it return ErrClosed first.
func (c *Call) Close() error {
	if c.life.close() {
		C.botcall_call_free(c.h)
		c.h = nil
	}
	return nil
}
