// Legitimate probes and hostile clients for the "under attack" phase (issue 12).
//
// lookup: paced GET /lookup/{id} from chosen source addresses, so a probe
// stays inside the per-client rate limit and measures latency, not refusals.
// attack: one hostile client kind at a time, from chosen source addresses,
// bounded by -duration (and the hard -max-run); every kind reproduces a
// finding of the adversarial review, see tests/hostile.rs for the same
// attacks as assertions.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// ----------------------------------------------------------------- lookup probe

func lookupMode(args []string) {
	fs := flag.NewFlagSet("lookup", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	idsFile := fs.String("ids", "", `"ID ..." lines: the ids looked up, round robin`)
	src := fs.String("src", "", "comma-separated loopback source IPs: one keep-alive connection each")
	rate := fs.Int("rate", 40, "requests per second per source IP")
	duration := fs.Duration("duration", 10*time.Second, "how long")
	maxRun := fs.Duration("max-run", 2*time.Minute, "hard cap")
	_ = fs.Parse(args)
	mustLoopback(*base)
	ctx, cancel := hardStop(*maxRun)
	defer cancel()
	raw, err := os.ReadFile(*idsFile)
	if err != nil {
		die("%v", err)
	}
	var ids []string
	for _, ln := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(ln); len(f) > 0 {
			ids = append(ids, f[0])
		}
	}
	if len(ids) == 0 {
		die("no ids in %s", *idsFile)
	}
	srcs := srcAddrs(*src)
	if len(srcs) == 0 {
		srcs = []*net.TCPAddr{nil}
	}
	var mu sync.Mutex
	var lats []float64
	var non200, errs atomic.Int64
	var firstErr atomic.Value
	end := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for i, la := range srcs {
		wg.Add(1)
		go func(i int, la *net.TCPAddr) {
			defer wg.Done()
			nd := &net.Dialer{Timeout: 10 * time.Second}
			if la != nil {
				nd.LocalAddr = la
			}
			cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				Proxy: nil, DialContext: nd.DialContext, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
			tick := time.NewTicker(time.Second / time.Duration(maxInt(*rate, 1)))
			defer tick.Stop()
			for k := i; time.Now().Before(end) && ctx.Err() == nil; k++ {
				<-tick.C
				t0 := time.Now()
				resp, err := cl.Get(*base + "/lookup/" + url.PathEscape(ids[k%len(ids)]))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				dt := time.Since(t0)
				if resp.StatusCode != 200 {
					non200.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, b))
					continue
				}
				mu.Lock()
				lats = append(lats, float64(dt.Nanoseconds())/1000)
				mu.Unlock()
			}
		}(i, la)
	}
	wg.Wait()
	sort.Float64s(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return lats[int(float64(len(lats)-1)*p+0.5)]
	}
	fe, _ := firstErr.Load().(string)
	b, _ := json.Marshal(map[string]interface{}{
		"client": "lookup", "requests": len(lats), "non200": non200.Load(), "errors": errs.Load(),
		"first_error": fe, "p50_us": pct(0.5), "p99_us": pct(0.99), "max_us": pct(1),
	})
	fmt.Println(string(b))
}

// ----------------------------------------------------------------- raw WebSocket

// maskedFrame is a client frame (RFC 6455 §5.2): b0 is FIN/opcode.
func maskedFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

// readFrame reads one server frame: opcode and payload.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<24 {
		return 0, nil, errors.New("frame too large")
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[0] & 0x0f, p, err
}

// closeOf reads frames until the close frame: "close NNNN", or how the socket ended.
// The first error message's code, if any, is returned too.
func closeOf(c net.Conn, r *bufio.Reader, within time.Duration) (string, string) {
	_ = c.SetReadDeadline(time.Now().Add(within))
	code := ""
	for {
		op, p, err := readFrame(r)
		if err != nil {
			return "ended", code
		}
		switch op {
		case 0x1:
			var m struct{ Type, Code string }
			if json.Unmarshal(p, &m) == nil && m.Type == "error" && code == "" {
				code = m.Code
			}
		case 0x8:
			if len(p) >= 2 {
				return "close " + strconv.Itoa(int(binary.BigEndian.Uint16(p))), code
			}
			return "close", code
		}
	}
}

// rawUpgrade dials hostport from la and upgrades to a WebSocket by hand (an
// attacker does not need a library's manners). On a refusal it returns the
// status and error code ("429 rate_limited").
func rawUpgrade(la *net.TCPAddr, hostport string) (net.Conn, *bufio.Reader, string, error) {
	nd := &net.Dialer{Timeout: 5 * time.Second}
	if la != nil {
		nd.LocalAddr = la
	}
	c, err := nd.Dial("tcp", hostport)
	if err != nil {
		return nil, nil, "", err
	}
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + hostport + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = c.Write([]byte(req))
	r := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(r, nil)
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, nil, "no answer", err
	}
	if resp.StatusCode == 101 {
		return c, r, "", nil
	}
	var body struct{ Code string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = json.Unmarshal(b, &body)
	c.Close()
	return nil, nil, strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, body.Code)), errors.New("refused")
}

// ----------------------------------------------------------------- attacks

type tally struct {
	mu sync.Mutex
	m  map[string]int64
}

func (t *tally) add(k string) {
	t.mu.Lock()
	t.m[k]++
	t.mu.Unlock()
}

func attackMode(args []string) {
	fs := flag.NewFlagSet("attack", flag.ExitOnError)
	kind := fs.String("kind", "ping", "ping | slots | badsig | callspam | openids | partial | ice")
	u := fs.String("url", "ws://127.0.0.1:8080/v1/ws", "the daemon's WebSocket URL")
	src := fs.String("src", "", "comma-separated loopback source IPs of the attacker")
	k := fs.Int("k", 4, "sockets (or workers) per source IP")
	duration := fs.Duration("duration", 15*time.Second, "how long the attack runs")
	botsFile := fs.String("bots", "", `"ID TOKEN" lines: callspam's and ice's victim bot (first line)`)
	maxBytes := fs.Int64("max-bytes", 512<<20, "ping: stop after this many bytes in all (the review's 400 MB; a daemon without the fix holds ~1.2 bytes per byte)")
	maxRun := fs.Duration("max-run", 2*time.Minute, "hard cap")
	_ = fs.Parse(args)
	mustLoopback(*u)
	pu, err := url.Parse(*u)
	if err != nil {
		die("%v", err)
	}
	hostport := pu.Host
	base := "http://" + hostport
	srcs := srcAddrs(*src)
	if len(srcs) == 0 {
		die("-src is required")
	}
	raiseNofile()
	ctx, cancel := hardStop(*maxRun)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, *duration)
	defer stop()
	t := &tally{m: map[string]int64{}}
	var sent atomic.Int64
	var victim [2]string
	if *kind == "callspam" || *kind == "ice" {
		raw, err := os.ReadFile(*botsFile)
		if err != nil {
			die("-bots: %v", err)
		}
		f := strings.Fields(strings.SplitN(string(raw), "\n", 2)[0])
		if len(f) != 2 {
			die("-bots: no ID TOKEN line")
		}
		victim = [2]string{f[0], f[1]}
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	each := func(fn func(la *net.TCPAddr, w int)) {
		for _, la := range srcs {
			for w := 0; w < *k; w++ {
				wg.Add(1)
				go func(la *net.TCPAddr, w int) { defer wg.Done(); fn(la, w) }(la, w)
			}
		}
	}
	pause := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	switch *kind {
	case "ping":
		// Finding 1: pings without hello, never reading; a socket the daemon ends is replaced.
		ping := maskedFrame(0x89, []byte(strings.Repeat("p", 125)))
		batch := []byte{}
		for i := 0; i < 64; i++ {
			batch = append(batch, ping...)
		}
		each(func(la *net.TCPAddr, _ int) {
			for ctx.Err() == nil && sent.Load() < *maxBytes {
				c, _, why, err := rawUpgrade(la, hostport)
				if err != nil {
					t.add("upgrade " + why)
					pause(100 * time.Millisecond)
					continue
				}
				t.add("sockets")
				for ctx.Err() == nil && sent.Load() < *maxBytes {
					_ = c.SetWriteDeadline(time.Now().Add(time.Second))
					n, err := c.Write(batch)
					sent.Add(int64(n))
					if err != nil {
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							continue // the daemon does not read faster: keep pushing
						}
						t.add("ended")
						break
					}
				}
				c.Close()
			}
		})
	case "slots":
		// Finding 2: hold as many caller sockets as the daemon gives one client.
		each(func(la *net.TCPAddr, _ int) {
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for ctx.Err() == nil && len(held) < 1000 {
				c, _, why, err := rawUpgrade(la, hostport)
				if err != nil {
					t.add("upgrade " + why)
					pause(200 * time.Millisecond)
					continue
				}
				_, _ = c.Write(maskedFrame(0x81, []byte(`{"type":"hello","role":"caller","v":1}`)))
				t.add("held")
				held = append(held, c)
			}
			<-ctx.Done()
		})
	case "badsig":
		// Finding 3: one bad-signature ES256 bot hello per socket, as fast as answered.
		sig := b64.EncodeToString(bytesOf(0x5a, 64))
		hdr := b64.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`))
		var n atomic.Int64
		each(func(la *net.TCPAddr, _ int) {
			for ctx.Err() == nil {
				now := time.Now().Unix()
				claims := fmt.Sprintf(`{"sub":"bench-es-x%d","iat":%d,"exp":%d}`, n.Add(1), now, now+300)
				tok := hdr + "." + b64.EncodeToString([]byte(claims)) + "." + sig
				c, r, why, err := rawUpgrade(la, hostport)
				if err != nil {
					t.add("upgrade " + why)
					continue
				}
				hello, _ := json.Marshal(map[string]string{"type": "hello", "role": "bot", "token": tok})
				_, _ = c.Write(maskedFrame(0x81, hello))
				end, code := closeOf(c, r, 10*time.Second)
				t.add("hello " + code + " " + end)
				c.Close()
			}
		})
	case "callspam":
		// Finding 4: caller sessions calling one bot (which rejects every call) flat out.
		bot, err := victimBot(ctx, *u, victim, true)
		if err != nil {
			die("victim bot: %v", err)
		}
		defer bot.Close()
		each(func(la *net.TCPAddr, _ int) {
			c, err := wsFrom(ctx, la, *u)
			if err != nil {
				t.add("dial " + err.Error())
				return
			}
			defer c.Close()
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","role":"caller","v":1}`))
			go func() {
				for {
					var m rmsg
					if err := c.ReadJSON(&m); err != nil {
						return
					}
					t.add(strings.TrimSpace(m.Type + " " + m.Code))
				}
			}()
			call, _ := json.Marshal(map[string]string{"type": "call", "to": victim[0], "sdp_offer": sdp(0, "offer", 600)})
			for ctx.Err() == nil {
				if c.WriteMessage(websocket.TextMessage, call) != nil {
					t.add("ended")
					return
				}
				t.add("calls")
				pause(50 * time.Millisecond) // under the per-socket message rate
			}
		})
	case "openids":
		// Finding 5: new self-certifying ids with the longest TTL, as fast as answered.
		each(func(la *net.TCPAddr, _ int) {
			nd := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: la}
			cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				Proxy: nil, DialContext: nd.DialContext, MaxIdleConnsPerHost: 1}}
			for ctx.Err() == nil {
				id, tok := openToken()
				body := fmt.Sprintf(`{"agent_id":%q,"ttl":86400}`, id)
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/register", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := cl.Do(req)
				if err != nil {
					t.add("error")
					continue
				}
				var e struct{ Code string }
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				_ = json.Unmarshal(b, &e)
				t.add(strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, e.Code)))
			}
		})
	case "partial":
		// Finding 6: sockets that hold a 16 KB message fragment plus a partial frame
		// (even workers) or an HTTP request with a partial body (odd workers).
		frag := maskedFrame(0x01, bytesOf('a', 16000))
		cont := maskedFrame(0x80, bytesOf('a', 300))
		wsPart := append(append([]byte{}, frag...), cont[:len(cont)-200]...)
		httpPart := append([]byte("POST /register HTTP/1.1\r\nHost: "+hostport+"\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer x\r\nContent-Length: 16000\r\n\r\n"), bytesOf(' ', 12000)...)
		each(func(la *net.TCPAddr, w int) {
			for ctx.Err() == nil {
				var c net.Conn
				var r *bufio.Reader
				var err error
				if w%2 == 0 {
					var why string
					if c, r, why, err = rawUpgrade(la, hostport); err != nil {
						t.add("upgrade " + why)
						pause(100 * time.Millisecond)
						continue
					}
					_, _ = c.Write(wsPart)
				} else {
					nd := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: la}
					if c, err = nd.Dial("tcp", hostport); err != nil {
						t.add("dial")
						pause(100 * time.Millisecond)
						continue
					}
					_, _ = c.Write(httpPart)
					r = bufio.NewReader(c)
				}
				go func() { <-ctx.Done(); c.Close() }()
				if w%2 == 0 {
					end, _ := closeOf(c, r, *duration)
					t.add("ws " + end)
				} else {
					_ = c.SetReadDeadline(time.Now().Add(*duration))
					if resp, err := http.ReadResponse(r, nil); err == nil {
						t.add("http " + strconv.Itoa(resp.StatusCode))
					} else {
						t.add("http ended")
					}
				}
				c.Close()
			}
		})
	case "ice":
		// Finding 7: calls to a bot that never answers, each followed by a candidate flood.
		bot, err := victimBot(ctx, *u, victim, false)
		if err != nil {
			die("victim bot: %v", err)
		}
		defer bot.Close()
		cand := strings.Repeat("x", 200)
		each(func(la *net.TCPAddr, w int) {
			c, err := wsFrom(ctx, la, *u)
			if err != nil {
				t.add("dial " + err.Error())
				return
			}
			defer c.Close()
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","role":"caller","v":1}`))
			ringing := make(chan string, 4)
			go func() {
				for {
					var m rmsg
					if err := c.ReadJSON(&m); err != nil {
						close(ringing)
						return
					}
					if m.Type == "ringing" {
						ringing <- m.CallID
					}
					t.add(strings.TrimSpace(m.Type + " " + m.Code))
				}
			}()
			call, _ := json.Marshal(map[string]string{"type": "call", "to": victim[0], "sdp_offer": sdp(w, "offer", 600)})
			for ctx.Err() == nil {
				_ = c.WriteMessage(websocket.TextMessage, call)
				var id string
				select {
				case id = <-ringing:
				case <-time.After(time.Second):
					continue // busy or limited: try again
				case <-ctx.Done():
					return
				}
				for i := 0; i < 2000 && ctx.Err() == nil; i++ {
					m, _ := json.Marshal(map[string]interface{}{"type": "ice", "call_id": id,
						"candidate": fmt.Sprintf("candidate:%d 1 udp 1 127.0.0.1 %d typ host %s", i, 40000+i, cand)})
					if c.WriteMessage(websocket.TextMessage, m) != nil {
						return
					}
					sent.Add(int64(len(m)))
				}
				h, _ := json.Marshal(map[string]string{"type": "hangup", "call_id": id, "reason": "x"})
				_ = c.WriteMessage(websocket.TextMessage, h)
			}
		})
	default:
		die("unknown -kind %q", *kind)
	}
	wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	b, _ := json.Marshal(map[string]interface{}{"kind": *kind, "secs": time.Since(t0).Seconds(),
		"sent_bytes": sent.Load(), "outcomes": t.m})
	fmt.Println(string(b))
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// wsFrom is a gorilla WebSocket from source address la.
func wsFrom(ctx context.Context, la *net.TCPAddr, u string) (*websocket.Conn, error) {
	nd := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: la}
	d := &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second}
	c, _, err := d.DialContext(ctx, u, nil)
	return c, err
}

// victimBot connects the attacked bot (many calls at once); it rejects every
// call (reject) or lets them ring, and reads everything it is sent.
func victimBot(ctx context.Context, u string, bot [2]string, reject bool) (*websocket.Conn, error) {
	c, err := wsFrom(ctx, nil, u)
	if err != nil {
		return nil, err
	}
	hello, _ := json.Marshal(map[string]interface{}{"type": "hello", "role": "bot", "token": bot[1], "max_calls": 64})
	_ = c.WriteMessage(websocket.TextMessage, hello)
	var m rmsg
	if err := c.ReadJSON(&m); err != nil || m.Type != "welcome" {
		c.Close()
		return nil, fmt.Errorf("hello: %v %+v", err, m)
	}
	go func() {
		for {
			var m rmsg
			if err := c.ReadJSON(&m); err != nil {
				return
			}
			if reject && m.Type == "incoming" {
				r, _ := json.Marshal(map[string]string{"type": "reject", "call_id": m.CallID, "reason": "busy"})
				_ = c.WriteMessage(websocket.TextMessage, r)
			}
		}
	}()
	return c, nil
}

// openToken makes a fresh ES256 key and a BotAuth token carrying it, for the
// self-certifying id (the key's RFC 7638 thumbprint) it returns.
func openToken() (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		die("%v", err)
	}
	x := b64.EncodeToString(pad32(key.X.Bytes()))
	y := b64.EncodeToString(pad32(key.Y.Bytes()))
	tp := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	id := b64.EncodeToString(tp[:])
	now := time.Now().Unix()
	h := `{"alg":"ES256","typ":"JWT","jwk":{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"}}`
	claims := fmt.Sprintf(`{"sub":%q,"iat":%d,"exp":%d}`, id, now, now+300)
	input := b64.EncodeToString([]byte(h)) + "." + b64.EncodeToString([]byte(claims))
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		die("%v", err)
	}
	return id, input + "." + b64.EncodeToString(append(pad32(r.Bytes()), pad32(s.Bytes())...))
}
