// floor: the kernel's share of a relayed round trip, measured.
//
// A single-threaded epoll server that does, per round trip of `botload relay`, exactly the
// socket operations botcalld does (strace: 3 recvfrom, 4 sendto with the same frame sizes,
// an epoll_pwait per inbound message) and nothing else: no JSON parsing (the frames it sends
// are the caller's and bot's bytes cut at fixed places and padded), no signature, no store,
// no timers. Level-triggered epoll (no re-arms), one read per readiness, one write per frame.
// Every syscall is a raw one (no Go scheduler hand-offs) and the process runs one thread of
// Go code with the GC off, so `server_cpu_us_per_rt` of `botload relay -server-pid` against
// it is, to within the Go runtime's 100 preemption ticks a second, what the kernel charges
// for the loopback TCP and epoll work: the floor below which no relay in user space gets.
//
// It speaks just enough of the protocol for `botload relay` (Go client, sorted JSON keys):
// an upgrade, a `welcome` for any hello (a bot hello pairs with the next caller hello, as
// `botload relay` dials them), then a caller's `call` → `ringing` to the caller and
// `incoming` (the offer) to its bot; the bot's `answer` → `answer` to the caller; the
// caller's `hangup` → `hangup` to the bot. Loopback only; ends after -max-run or on SIGTERM.
package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"
	"unsafe"
)

// The sizes of botcalld's frames for this round trip with 2,000-byte SDPs (strace of
// 9354e7b): header included. `incoming` carries the attestation, `from` and the offer.
const (
	floorRinging  = 77
	floorIncoming = 2935
	floorAnswer   = 2144
	floorHangup   = 73
	floorReadBuf  = 16 * 1024 // botcalld's READ_CHUNK
)

type floorConn struct {
	fd      int
	ws      bool   // upgraded
	hello   bool   // said hello
	bot     bool   // role
	peer    int    // the paired socket (bot ↔ caller), -1 until paired
	pending []byte // an incomplete head or frame
}

type floor struct {
	ep       int
	conns    map[int]*floorConn
	lastBot  int // a bot hello waiting for its caller
	buf      []byte
	out      []byte
	sent     int64
	received int64
}

func rawErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func (f *floor) send(fd int, frame []byte) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&frame[0])),
		uintptr(len(frame)), syscall.MSG_NOSIGNAL, 0, 0)
	if e != 0 || int(n) != len(frame) {
		// The client reads everything it is sent: a short write means it has gone.
		f.drop(fd)
		return
	}
	f.sent++
}

func (f *floor) drop(fd int) {
	if _, ok := f.conns[fd]; ok {
		delete(f.conns, fd)
		_, _, _ = syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(f.ep), syscall.EPOLL_CTL_DEL, uintptr(fd), 0, 0, 0)
		_ = syscall.Close(fd)
		if f.lastBot == fd {
			f.lastBot = -1
		}
	}
}

// frame returns a server frame (text, FIN, unmasked) of exactly `size` bytes: `head` + `body`
// + a `"pad"` member filling the rest + `}`. If there is not room for the pad, it is left out.
func (f *floor) frame(size int, head, body []byte) []byte {
	plen := size - 2
	hl := 2
	if plen > 125 {
		plen = size - 4
		hl = 4
	}
	o := f.out[:0]
	if hl == 2 {
		o = append(o, 0x81, byte(plen))
	} else {
		o = append(o, 0x81, 126, byte(plen>>8), byte(plen))
	}
	o = append(o, head...)
	o = append(o, body...)
	if fill := plen - len(head) - len(body) - 1; fill >= len(`,"pad":""`) {
		o = append(o, `,"pad":"`...)
		for i := 0; i < fill-len(`,"pad":""`); i++ {
			o = append(o, 'x')
		}
		o = append(o, '"')
	}
	o = append(o, '}')
	// A frame shorter than planned (no room to pad): fix its length.
	if real := len(o) - hl; real != plen {
		if hl == 2 {
			o[1] = byte(real)
		} else {
			o[2], o[3] = byte(real>>8), byte(real)
		}
	}
	f.out = o
	return o
}

// message handles one whole text message (already unmasked) from c.
func (f *floor) message(c *floorConn, p []byte) {
	f.received++
	if !c.hello {
		c.hello = true
		c.bot = bytes.Contains(p, []byte(`"role":"bot"`))
		if c.bot {
			f.lastBot = c.fd
		} else if b, ok := f.conns[f.lastBot]; ok {
			c.peer, b.peer = b.fd, c.fd
			f.lastBot = -1
		}
		f.send(c.fd, f.frame(2+len(`{"type":"welcome"}`), []byte(`{"type":"welcome"`), nil))
		return
	}
	switch {
	case !c.bot && bytes.HasPrefix(p, []byte(`{"sdp_offer":`)):
		// call: {"sdp_offer":"…","to":"…","type":"call"}
		f.send(c.fd, f.frame(floorRinging, []byte(`{"type":"ringing","call_id":"c-floor"`), nil))
		end := bytes.LastIndex(p, []byte(`,"to":`))
		if end < 13 {
			return
		}
		if c.peer >= 0 {
			f.send(c.peer, f.frame(floorIncoming, []byte(`{"type":"incoming","call_id":"c-floor","sdp_offer":`), p[13:end]))
		}
	case !c.bot && bytes.HasPrefix(p, []byte(`{"call_id":`)):
		// hangup: {"call_id":"…","reason":"bench","type":"hangup"}
		if c.peer >= 0 {
			f.send(c.peer, f.frame(floorHangup, []byte(`{"type":"hangup","call_id":"c-floor","reason":"bench"`), nil))
		}
	case c.bot && len(p) > 1:
		// answer: {"call_id":"…","sdp_answer":"…","type":"answer"} — forwarded as it is, padded.
		if c.peer >= 0 {
			f.send(c.peer, f.frame(floorAnswer, p[:len(p)-1], nil))
		}
	}
}

// frames parses the complete client frames in b (masked, RFC 6455) and returns the bytes used.
func (f *floor) frames(c *floorConn, b []byte) (int, bool) {
	used := 0
	for {
		r := b[used:]
		if len(r) < 6 {
			return used, true
		}
		op, n, hl := r[0]&0x0f, int(r[1]&0x7f), 2
		switch n {
		case 126:
			if len(r) < 8 {
				return used, true
			}
			n, hl = int(r[2])<<8|int(r[3]), 4
		case 127:
			return used, false // the relay never sends 64-bit lengths
		}
		if len(r) < hl+4+n {
			return used, true
		}
		mask := r[hl : hl+4]
		p := r[hl+4 : hl+4+n]
		for i := range p {
			p[i] ^= mask[i&3]
		}
		used += hl + 4 + n
		switch op {
		case 1:
			f.message(c, p)
		case 8:
			return used, false
		}
	}
}

var wsGUID = []byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11")

// upgrade answers the HTTP head in b, if complete; returns the bytes used.
func (f *floor) upgrade(c *floorConn, b []byte) (int, bool) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, len(b) < 8192
	}
	head := b[:end]
	var key []byte
	for _, ln := range bytes.Split(head, []byte("\r\n")) {
		if i := bytes.IndexByte(ln, ':'); i > 0 && bytes.EqualFold(ln[:i], []byte("sec-websocket-key")) {
			key = bytes.TrimSpace(ln[i+1:])
		}
	}
	if key == nil {
		return 0, false
	}
	h := sha1.New()
	h.Write(key)
	h.Write(wsGUID)
	resp := "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: " +
		base64.StdEncoding.EncodeToString(h.Sum(nil)) + "\r\n\r\n"
	c.ws = true
	f.send(c.fd, []byte(resp))
	return end + 4, true
}

func (f *floor) readable(c *floorConn) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&f.buf[0])),
		uintptr(len(f.buf)), 0, 0, 0)
	if e == syscall.EAGAIN {
		return
	}
	if e != 0 || n == 0 {
		f.drop(c.fd)
		return
	}
	data := f.buf[:n]
	if len(c.pending) > 0 {
		c.pending = append(c.pending, data...)
		data = c.pending
	}
	for {
		var used int
		var ok bool
		wasWS := c.ws
		if c.ws {
			used, ok = f.frames(c, data)
		} else {
			used, ok = f.upgrade(c, data)
		}
		if !ok {
			f.drop(c.fd)
			return
		}
		data = data[used:]
		if c.ws == wasWS || len(data) == 0 {
			break
		}
	}
	if len(data) > 0 {
		c.pending = append([]byte(nil), data...)
	} else {
		c.pending = nil
	}
}

func floorMode(args []string) {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	maxRun := fs.Duration("max-run", 10*time.Minute, "hard cap")
	_ = fs.Parse(args)
	ta, err := net.ResolveTCPAddr("tcp4", *addr)
	if err != nil || !ta.IP.IsLoopback() {
		die("refusing non-loopback address %q", *addr)
	}
	// One thread of Go code, no GC: what is measured is the kernel and this loop.
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	debug.SetGCPercent(-1)
	ln, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		die("socket: %v", err)
	}
	_ = syscall.SetsockoptInt(ln, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	// As botcalld: accepted sockets inherit TCP_NODELAY from the listener.
	_ = syscall.SetsockoptInt(ln, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	sa := &syscall.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	if err := syscall.Bind(ln, sa); err != nil {
		die("bind: %v", err)
	}
	if err := syscall.Listen(ln, 1024); err != nil {
		die("listen: %v", err)
	}
	local, _ := syscall.Getsockname(ln)
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		die("epoll: %v", err)
	}
	add := func(fd int) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(ep), syscall.EPOLL_CTL_ADD, uintptr(fd),
			uintptr(unsafe.Pointer(&ev)), 0, 0)
		if e != 0 {
			die("epoll_ctl: %v", rawErr(e))
		}
	}
	add(ln)
	f := &floor{ep: ep, conns: map[int]*floorConn{}, lastBot: -1, buf: make([]byte, floorReadBuf),
		out: make([]byte, 0, 8192)}
	fmt.Printf("LISTEN %d\n", local.(*syscall.SockaddrInet4).Port)
	deadline := time.Now().Add(*maxRun)
	events := make([]syscall.EpollEvent, 64)
	for time.Now().Before(deadline) {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])),
			uintptr(len(events)), 1000, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			die("epoll_pwait: %v", rawErr(e))
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == ln {
				for {
					c, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, uintptr(ln), 0, 0,
						syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
					if e != 0 {
						break
					}
					f.conns[int(c)] = &floorConn{fd: int(c), peer: -1}
					add(int(c))
				}
				continue
			}
			if c, ok := f.conns[fd]; ok {
				f.readable(c)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "floor: max-run reached (%d messages in, %d frames out)\n", f.received, f.sent)
}
