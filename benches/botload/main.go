// botload: BotCall benchmark helper (loopback only, bounded).
//
// Built with Debian's Go in GOPATH mode (no module proxy), like
// ../shared/bench/load/wsload, by benches/load.py (or by hand:
// GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/botcall-peers/botload .).
//
// Modes (first argument):
//
//	setup    -dir D            make keys: D/hs.jwk (HS256 secret), D/es.jwk (ES256 private),
//	                           D/keys.json for botcalld (fleet prefixes bench-es- → ES256, bench- → HS256)
//	mint     -dir D -alg hs|es -prefix P -n N [-start S] [-ids M] [-ttl 600] [-out F]
//	                           print "ID TOKEN" lines (BotAuth: sub = ID, iat, exp)
//	register -url U -n N -prefix P [-dir D -alg hs] | [-style goseed -token T] [-conc 32]
//	                           register N agents over keep-alive HTTP (one token per id for botcalld)
//	ws       -url TEMPLATES -n N ...
//	                           hold N WebSockets: upgrade (Authorization: Bearer, per-connection
//	                           HS256 token for sub = id with -dir, or one -token), optional first
//	                           message -hello, first server message must contain -expect-first,
//	                           then an app-level heartbeat -payload every -interval (first at a
//	                           random offset) while a reader per connection drains what the server
//	                           sends (WebSocket pings are answered with pongs by gorilla).
//	                           Prints READY ... once every dial has finished and DONE ... at the end.
//	relay    -url U -bots F -pairs 4 -n 2000 -warmup 300 -server-pid PID
//	                           signaling round trips caller→daemon→bot→daemon→caller with a Go
//	                           client (call → incoming → answer → answer, then hangup, untimed);
//	                           prints one JSON line with p50/p99/max µs and server CPU µs/round trip.
//	                           -src (callers' source IPs) and -pace keep it inside per-client call limits.
//	lookup   -url U -ids F -src IPS -rate R -duration D
//	                           GET /lookup/{id} at R requests/s per source IP, one keep-alive connection
//	                           each; prints one JSON line with p50/p99/max µs and non-200 answers.
//	attack   -kind K -url WS -src IPS -duration D [-k N] [-bots F]
//	                           a hostile client (issue 12), bounded by -duration: ping (pings, never
//	                           read), slots (hold sockets), badsig (bad-signature bot hellos), callspam,
//	                           openids (new self-certifying ids), partial (half-sent messages and
//	                           bodies), ice (candidate flood at a ringing bot); prints one JSON line
//	                           with what was sent and how the daemon answered.
//	floor    -addr 127.0.0.1:PORT -max-run D
//	                           the relay's kernel floor (floor.go): a single-threaded epoll server doing
//	                           only the socket operations botcalld does per `relay` round trip; prints
//	                           LISTEN PORT. Measure it with `relay -server-pid`.
//
// Every URL and source address must be on 127.0.0.0/8; every mode has a hard -max-run.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

var b64 = base64.RawURLEncoding

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "botload: "+format+"\n", a...)
	os.Exit(2)
}

// ----------------------------------------------------------------- keys and tokens

type keys struct {
	hs []byte
	es *ecdsa.PrivateKey
}

func pad32(b []byte) []byte {
	out := make([]byte, 32)
	copy(out[32-len(b):], b)
	return out
}

func setup(dir string) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		die("%v", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		die("%v", err)
	}
	es, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		die("%v", err)
	}
	oct := map[string]string{"kty": "oct", "k": b64.EncodeToString(secret)}
	pub := map[string]string{"kty": "EC", "crv": "P-256",
		"x": b64.EncodeToString(pad32(es.X.Bytes())), "y": b64.EncodeToString(pad32(es.Y.Bytes()))}
	priv := map[string]string{"kty": "EC", "crv": "P-256", "x": pub["x"], "y": pub["y"],
		"d": b64.EncodeToString(pad32(es.D.Bytes()))}
	write := func(name string, v interface{}) {
		b, _ := json.Marshal(v)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			die("%v", err)
		}
	}
	write("hs.jwk", oct)
	write("es.jwk", priv)
	write("es.pub.jwk", pub)
	write("keys.json", map[string]interface{}{
		"fleets": []interface{}{
			map[string]interface{}{"prefix": "bench-es-", "key": pub},
			map[string]interface{}{"prefix": "bench-", "key": oct},
		},
	})
	fmt.Println(dir)
}

func loadKeys(dir string) *keys {
	var k keys
	read := func(name string) map[string]string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			die("%v (run botload setup -dir %s)", err, dir)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			die("%s: %v", name, err)
		}
		return m
	}
	hs := read("hs.jwk")
	var err error
	if k.hs, err = b64.DecodeString(hs["k"]); err != nil {
		die("hs.jwk: %v", err)
	}
	es := read("es.jwk")
	dec := func(s string) *big.Int {
		b, err := b64.DecodeString(s)
		if err != nil {
			die("es.jwk: %v", err)
		}
		return new(big.Int).SetBytes(b)
	}
	k.es = &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: elliptic.P256(), X: dec(es["x"]), Y: dec(es["y"])}, D: dec(es["d"])}
	return &k
}

// token mints a BotAuth JWT for sub, valid ttl seconds from now.
func (k *keys) token(alg, sub string, ttl int64, nonce int) string {
	now := time.Now().Unix()
	h := `{"alg":"HS256","typ":"JWT"}`
	if alg == "es" {
		h = `{"alg":"ES256","typ":"JWT"}`
	}
	claims := fmt.Sprintf(`{"sub":%q,"iat":%d,"exp":%d,"jti":"%d"}`, sub, now, now+ttl, nonce)
	input := b64.EncodeToString([]byte(h)) + "." + b64.EncodeToString([]byte(claims))
	var sig []byte
	if alg == "es" {
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k.es, d[:])
		if err != nil {
			die("%v", err)
		}
		sig = append(pad32(r.Bytes()), pad32(s.Bytes())...)
	} else {
		m := hmac.New(sha256.New, k.hs)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	}
	return input + "." + b64.EncodeToString(sig)
}

// ----------------------------------------------------------------- loopback checks

func loopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	ip := net.ParseIP(pu.Hostname())
	return pu.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

func mustLoopback(urls ...string) {
	for _, u := range urls {
		if !loopbackURL(strings.ReplaceAll(u, "{id}", "x")) {
			die("refusing non-loopback URL %q", u)
		}
	}
}

// srcAddrs parses a comma-separated list of loopback source IPs ("" = none).
func srcAddrs(list string) []*net.TCPAddr {
	var srcs []*net.TCPAddr
	if list == "" {
		return srcs
	}
	for _, s := range strings.Split(list, ",") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil || !ip.IsLoopback() {
			die("refusing non-loopback source %q", s)
		}
		srcs = append(srcs, &net.TCPAddr{IP: ip})
	}
	return srcs
}

func raiseNofile() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

func hardStop(maxRun time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), maxRun)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; cancel() }()
	// Belt and braces: exit even if something ignores the context.
	time.AfterFunc(maxRun+30*time.Second, func() { fmt.Fprintln(os.Stderr, "botload: max-run exceeded"); os.Exit(3) })
	return ctx, cancel
}

// ----------------------------------------------------------------- mint

func mint(args []string) {
	fs := flag.NewFlagSet("mint", flag.ExitOnError)
	dir := fs.String("dir", "", "key directory (from setup)")
	alg := fs.String("alg", "hs", "hs | es")
	prefix := fs.String("prefix", "bench-", "agent id prefix")
	n := fs.Int("n", 1000, "tokens")
	start := fs.Int("start", 0, "first token number")
	ids := fs.Int("ids", 0, "if > 0, id = prefix + (k mod ids): distinct tokens (jti) for a bounded set of ids")
	ttl := fs.Int64("ttl", 600, "token lifetime, seconds (botcalld accepts at most 600)")
	out := fs.String("out", "", "output file (default stdout)")
	_ = fs.Parse(args)
	k := loadKeys(*dir)
	var buf bytes.Buffer
	for i := *start; i < *start+*n; i++ {
		num := i
		if *ids > 0 {
			num = i % *ids
		}
		id := *prefix + strconv.Itoa(num)
		buf.WriteString(id)
		buf.WriteByte(' ')
		buf.WriteString(k.token(*alg, id, *ttl, i))
		buf.WriteByte('\n')
	}
	if *out == "" {
		_, _ = os.Stdout.Write(buf.Bytes())
	} else if err := os.WriteFile(*out, buf.Bytes(), 0o600); err != nil {
		die("%v", err)
	}
}

// ----------------------------------------------------------------- register

func register(args []string) {
	fs := flag.NewFlagSet("register", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	dir := fs.String("dir", "", "key directory (botcalld style: one token per id)")
	alg := fs.String("alg", "hs", "hs | es")
	style := fs.String("style", "botcall", "botcall | goseed")
	token := fs.String("token", "", "goseed: the one JWT")
	prefix := fs.String("prefix", "bench-mem-", "agent id prefix")
	n := fs.Int("n", 100000, "agents")
	start := fs.Int("start", 0, "first id number")
	conc := fs.Int("conc", 32, "requests in flight")
	listed := fs.Bool("listed", false, "botcall: listed")
	maxRun := fs.Duration("max-run", 5*time.Minute, "hard cap")
	_ = fs.Parse(args)
	mustLoopback(*base)
	ctx, cancel := hardStop(*maxRun)
	defer cancel()
	var k *keys
	if *style == "botcall" {
		k = loadKeys(*dir)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc, Proxy: nil}
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var ok, fail atomic.Int64
	var firstErr atomic.Value
	next := int64(*start - 1)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(atomic.AddInt64(&next, 1))
				if i >= *start+*n {
					return
				}
				id := *prefix + strconv.Itoa(i)
				body := fmt.Sprintf(`{"agent_id":%q,"endpoint":"tcp://127.0.0.1:%d"}`, id, 20000+i%40000)
				tok := *token
				if *style == "botcall" {
					body = fmt.Sprintf(`{"agent_id":%q,"endpoint":"tcp://127.0.0.1:%d","listed":%v}`, id, 20000+i%40000, *listed)
					tok = k.token(*alg, id, 600, i)
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", *base+"/register", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := cl.Do(req)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
						continue
					}
					err = fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
				}
				fail.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	wg.Wait()
	fe, _ := firstErr.Load().(string)
	fmt.Printf("REGISTERED ok=%d failed=%d s=%.2f first_err=%q\n", ok.Load(), fail.Load(), time.Since(t0).Seconds(), fe)
}

// ----------------------------------------------------------------- ws

func wsMode(args []string) {
	fs := flag.NewFlagSet("ws", flag.ExitOnError)
	urls := fs.String("url", "ws://127.0.0.1:8080/v1/ws", "comma-separated URL templates ({id} = agent id); connection i uses i mod len")
	n := fs.Int("n", 1000, "connections")
	idPrefix := fs.String("id-prefix", "bench-ws-", "agent id prefix")
	idOffset := fs.Int("id-offset", 0, "first agent id number")
	dir := fs.String("dir", "", "key directory: mint a per-connection HS256 BotAuth token (sub = id), sent as Authorization: Bearer")
	alg := fs.String("alg", "hs", "hs | es: the key of the per-connection tokens (-dir); es ids need the ES256 fleet's prefix (bench-es-)")
	token := fs.String("token", "", "one JWT for every connection (Authorization: Bearer)")
	hello := fs.String("hello", "", `first message after the upgrade, e.g. {"type":"hello","role":"bot"}`)
	expectFirst := fs.String("expect-first", "", "the first server message must contain this")
	payload := fs.String("payload", `{"type":"ping"}`, "app-level heartbeat text")
	interval := fs.Duration("interval", 25*time.Second, "heartbeat interval (0 = none)")
	hold := fs.Duration("hold", 60*time.Second, "hold after all dials")
	maxRun := fs.Duration("max-run", 15*time.Minute, "hard cap")
	src := fs.String("src", "", "comma-separated loopback source IPs")
	dialRate := fs.Int("dial-rate", 3000, "new connections per second")
	dialConc := fs.Int("dial-conc", 256, "dials in flight")
	bufSize := fs.Int("buf", 512, "client read/write buffer bytes")
	_ = fs.Parse(args)

	tmpls := strings.Split(*urls, ",")
	mustLoopback(tmpls...)
	srcs := srcAddrs(*src)
	if lim := raiseNofile(); lim != 0 && uint64(*n)+64 > lim {
		fmt.Fprintf(os.Stderr, "warning: -n %d but RLIMIT_NOFILE is %d\n", *n, lim)
	}
	var k *keys
	if *dir != "" {
		k = loadKeys(*dir)
	}
	ctx, cancel := hardStop(*maxRun)
	defer cancel()
	mk := func(la *net.TCPAddr) *websocket.Dialer {
		nd := &net.Dialer{Timeout: 10 * time.Second}
		if la != nil {
			nd.LocalAddr = la
		}
		return &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second,
			ReadBufferSize: *bufSize, WriteBufferSize: *bufSize}
	}
	var dialers []*websocket.Dialer
	if len(srcs) == 0 {
		dialers = append(dialers, mk(nil))
	}
	for _, la := range srcs {
		dialers = append(dialers, mk(la))
	}

	var connected, failed, sent, recvd, pings, dropped atomic.Int64
	var firstErr atomic.Value
	holdCtx, holdCancel := context.WithCancel(ctx)
	defer holdCancel()
	var wg, dialWG sync.WaitGroup
	sem := make(chan struct{}, *dialConc)
	tick := time.NewTicker(time.Second / time.Duration(maxInt(*dialRate, 1)))
	defer tick.Stop()
	start := time.Now()
	var latMu sync.Mutex
	lats := make([]time.Duration, 0, *n)

	conn := func(i int) {
		defer wg.Done()
		id := *idPrefix + strconv.Itoa(*idOffset+i)
		u := strings.ReplaceAll(tmpls[i%len(tmpls)], "{id}", url.QueryEscape(id))
		hdr := http.Header{}
		tok := *token
		if k != nil {
			tok = k.token(*alg, id, 600, i)
		}
		if tok != "" {
			hdr.Set("Authorization", "Bearer "+tok)
		}
		t0 := time.Now()
		c, resp, err := dialers[i%len(dialers)].DialContext(ctx, u, hdr)
		if err == nil && *hello != "" {
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			err = c.WriteMessage(websocket.TextMessage, []byte(strings.ReplaceAll(*hello, "{id}", id)))
			_ = c.SetWriteDeadline(time.Time{})
		}
		if err == nil && *expectFirst != "" {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, m, rerr := c.ReadMessage()
			_ = c.SetReadDeadline(time.Time{})
			if rerr != nil {
				err = fmt.Errorf("first message: %v", rerr)
			} else if !bytes.Contains(m, []byte(*expectFirst)) {
				err = fmt.Errorf("first message %.200q lacks %q", m, *expectFirst)
			}
		}
		<-sem
		dialWG.Done()
		if err != nil {
			if c != nil {
				c.Close()
			}
			failed.Add(1)
			if resp != nil {
				err = fmt.Errorf("%v (HTTP %d)", err, resp.StatusCode)
			}
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		defer c.Close()
		lat := time.Since(t0)
		latMu.Lock()
		lats = append(lats, lat)
		latMu.Unlock()
		connected.Add(1)
		defaultPing := c.PingHandler()
		c.SetPingHandler(func(s string) error { pings.Add(1); return defaultPing(s) })
		readerGone := make(chan struct{})
		go func() {
			defer close(readerGone)
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				recvd.Add(1)
			}
		}()
		var timerC <-chan time.Time
		var timer *time.Timer
		if *interval > 0 {
			timer = time.NewTimer(time.Duration(mrand.Int63n(int64(*interval))))
			defer timer.Stop()
			timerC = timer.C
		}
		msg := []byte(*payload)
		for {
			select {
			case <-readerGone:
				if holdCtx.Err() == nil {
					dropped.Add(1)
				}
				return
			case <-holdCtx.Done():
				_ = c.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(2*time.Second))
				return
			case <-timerC:
			}
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				dropped.Add(1)
				return
			}
			sent.Add(1)
			timer.Reset(*interval)
		}
	}

dial:
	for i := 0; i < *n; i++ {
		select {
		case <-ctx.Done():
			break dial
		case <-tick.C:
		}
		sem <- struct{}{}
		wg.Add(1)
		dialWG.Add(1)
		go conn(i)
	}
	dialWG.Wait()
	sort.Slice(lats, func(a, b int) bool { return lats[a] < lats[b] })
	pct := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[int(float64(len(lats)-1)*p)]
	}
	fe, _ := firstErr.Load().(string)
	fmt.Printf("READY connected=%d failed=%d dial_s=%.1f connect_p50=%v p99=%v first_err=%q\n",
		connected.Load(), failed.Load(), time.Since(start).Seconds(), pct(0.5), pct(0.99), fe)
	// "STATUS" on SIGUSR1: counters so far (the orchestrator reads them around a window).
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1)
	go func() {
		for range usr {
			fmt.Printf("STATUS connected=%d heartbeats_sent=%d msgs_recv=%d server_pings=%d dropped=%d\n",
				connected.Load(), sent.Load(), recvd.Load(), pings.Load(), dropped.Load())
		}
	}()
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	holdCancel()
	wg.Wait()
	fmt.Printf("DONE connected=%d failed=%d heartbeats_sent=%d msgs_recv=%d server_pings=%d dropped=%d run_s=%.1f\n",
		connected.Load(), failed.Load(), sent.Load(), recvd.Load(), pings.Load(), dropped.Load(), time.Since(start).Seconds())
}

// ----------------------------------------------------------------- relay

type rmsg struct {
	Type      string `json:"type"`
	CallID    string `json:"call_id"`
	SdpOffer  string `json:"sdp_offer"`
	SdpAnswer string `json:"sdp_answer"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

func sdp(seq int, kind string, size int) string {
	setup := "actpass"
	if kind == "answer" {
		setup = "active"
	}
	s := fmt.Sprintf("v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"+
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"+
		"a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\r\n"+
		"a=setup:%s\r\na=rtpmap:111 opus/48000/2\r\n", seq, setup)
	for len(s) < size {
		l := size - len(s) - 10
		if l > 64 {
			l = 64
		}
		if l < 0 {
			l = 0
		}
		s += "a=x-pad:" + strings.Repeat("x", l) + "\r\n"
	}
	return s
}

func seqOf(s string) int {
	i := strings.Index(s, "o=- ")
	if i < 0 {
		return -1
	}
	rest := s[i+4:]
	j := strings.IndexByte(rest, ' ')
	if j < 0 {
		return -1
	}
	v, _ := strconv.Atoi(rest[:j])
	return v
}

func schedNs(pid int) int64 {
	if pid == 0 {
		return 0
	}
	var tot int64
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, e.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			tot += v
		}
	}
	return tot
}

func relay(args []string) {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	u := fs.String("url", "ws://127.0.0.1:8080/v1/ws", "WebSocket URL")
	botURL := fs.String("bot-url", "", "WebSocket URL for the bots (default -url): another daemon of the same network")
	botsFile := fs.String("bots", "", `"ID TOKEN" lines (at least -pairs)`)
	pairs := fs.Int("pairs", 4, "caller/bot pairs, round robin")
	n := fs.Int("n", 2000, "timed round trips")
	warmup := fs.Int("warmup", 300, "untimed round trips first")
	size := fs.Int("sdp-bytes", 2000, "SDP size")
	pid := fs.Int("server-pid", 0, "server PID (CPU per round trip)")
	maxRun := fs.Duration("max-run", 3*time.Minute, "hard cap")
	gomaxprocs := fs.Int("gomaxprocs", 1, "Go threads running goroutines (0 = Go's default)")
	src := fs.String("src", "", "comma-separated loopback source IPs for the callers (caller i uses i mod len)")
	pace := fs.Duration("pace", 0, "least time from one round trip's start to the next (stay inside per-client call limits)")
	_ = fs.Parse(args)
	mustLoopback(*u)
	srcs := srcAddrs(*src)
	if *botURL == "" {
		*botURL = *u
	}
	mustLoopback(*botURL)
	ctx, cancel := hardStop(*maxRun)
	defer cancel()
	// Keep the client out of its own latency: one OS thread runs the goroutines (no
	// cross-thread hand-offs between the reader goroutines and the timing loop) and no GC
	// pauses (the run allocates a few tens of MB at most: -n is bounded by -max-run anyway).
	if *gomaxprocs > 0 {
		runtime.GOMAXPROCS(*gomaxprocs)
	}
	debug.SetGCPercent(-1)
	raw, err := os.ReadFile(*botsFile)
	if err != nil {
		die("%v", err)
	}
	var bots [][2]string
	for _, ln := range strings.Split(string(raw), "\n") {
		f := strings.Fields(ln)
		if len(f) == 2 {
			bots = append(bots, [2]string{f[0], f[1]})
		}
	}
	if len(bots) < *pairs {
		die("need %d bots in %s", *pairs, *botsFile)
	}
	d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 8192, WriteBufferSize: 8192}
	type pair struct {
		bot, caller *websocket.Conn
		botID       string
		answers     chan rmsg
	}
	readJSON := func(c *websocket.Conn) (rmsg, error) {
		var m rmsg
		_, b, err := c.ReadMessage()
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		return m, err
	}
	var errs atomic.Int64
	var firstErr atomic.Value
	ps := make([]*pair, *pairs)
	for i := range ps {
		p := &pair{botID: bots[i][0], answers: make(chan rmsg, 4)}
		if p.bot, _, err = d.DialContext(ctx, *botURL, nil); err != nil {
			die("dial: %v", err)
		}
		hello, _ := json.Marshal(map[string]string{"type": "hello", "role": "bot", "token": bots[i][1]})
		_ = p.bot.WriteMessage(websocket.TextMessage, hello)
		if m, err := readJSON(p.bot); err != nil || m.Type != "welcome" {
			die("bot hello: %v %+v", err, m)
		}
		cd := d
		if len(srcs) > 0 {
			nd := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: srcs[i%len(srcs)]}
			cd = &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second,
				ReadBufferSize: 8192, WriteBufferSize: 8192}
		}
		if p.caller, _, err = cd.DialContext(ctx, *u, nil); err != nil {
			die("dial: %v", err)
		}
		_ = p.caller.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","role":"caller"}`))
		if m, err := readJSON(p.caller); err != nil || m.Type != "welcome" {
			die("caller hello: %v %+v", err, m)
		}
		ps[i] = p
		// bot: answer every incoming offer
		go func(p *pair) {
			for {
				m, err := readJSON(p.bot)
				if err != nil {
					return
				}
				switch m.Type {
				case "incoming":
					a, _ := json.Marshal(map[string]string{"type": "answer", "call_id": m.CallID, "sdp_answer": sdp(seqOf(m.SdpOffer), "answer", *size)})
					_ = p.bot.WriteMessage(websocket.TextMessage, a)
				case "error":
					errs.Add(1)
					firstErr.CompareAndSwap(nil, "bot: "+m.Code+": "+m.Message)
				}
			}
		}(p)
		// caller: hand answers (and errors) to the timing loop
		go func(p *pair) {
			for {
				m, err := readJSON(p.caller)
				if err != nil {
					close(p.answers)
					return
				}
				switch m.Type {
				case "answer":
					p.answers <- m
				case "error":
					errs.Add(1)
					firstErr.CompareAndSwap(nil, "caller: "+m.Code+": "+m.Message)
					p.answers <- m
				}
			}
		}(p)
	}
	time.Sleep(200 * time.Millisecond)
	timeouts := 0
	var last time.Time
	one := func(seq int) (time.Duration, bool) {
		if wait := *pace - time.Since(last); *pace > 0 && wait > 0 {
			time.Sleep(wait)
		}
		last = time.Now()
		p := ps[seq%len(ps)]
		call, _ := json.Marshal(map[string]string{"type": "call", "to": p.botID, "sdp_offer": sdp(seq, "offer", *size)})
		t0 := time.Now()
		if err := p.caller.WriteMessage(websocket.TextMessage, call); err != nil {
			return 0, false
		}
		select {
		case m, ok := <-p.answers:
			dt := time.Since(t0)
			if !ok || m.Type != "answer" || seqOf(m.SdpAnswer) != seq {
				return 0, false
			}
			h, _ := json.Marshal(map[string]string{"type": "hangup", "call_id": m.CallID, "reason": "bench"})
			_ = p.caller.WriteMessage(websocket.TextMessage, h)
			return dt, true
		case <-time.After(5 * time.Second):
			timeouts++
			return 0, false
		case <-ctx.Done():
			return 0, false
		}
	}
	for s := 0; s < *warmup && ctx.Err() == nil; s++ {
		one(s)
	}
	lats := make([]float64, 0, *n)
	c0, w0 := schedNs(*pid), time.Now()
	for s := 0; s < *n && ctx.Err() == nil; s++ {
		if dt, ok := one(*warmup + s); ok {
			lats = append(lats, float64(dt.Nanoseconds())/1000)
		}
	}
	c1, w1 := schedNs(*pid), time.Now()
	sort.Float64s(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return lats[int(float64(len(lats)-1)*p+0.5)]
	}
	fe, _ := firstErr.Load().(string)
	res := map[string]interface{}{
		"client": "go", "round_trips": len(lats), "timeouts": timeouts, "errors": errs.Load(), "first_error": fe,
		"p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99), "p999_us": pct(0.999), "max_us": pct(1),
		"wall_s": w1.Sub(w0).Seconds(),
	}
	if *pid != 0 && len(lats) > 0 {
		res["server_cpu_us_per_rt"] = float64(c1-c0) / 1000 / float64(len(lats))
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	for _, p := range ps {
		p.caller.Close()
		p.bot.Close()
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func main() {
	if len(os.Args) < 2 {
		die("usage: botload setup|mint|register|ws|relay|lookup|attack|floor [flags]")
	}
	switch os.Args[1] {
	case "setup":
		fs := flag.NewFlagSet("setup", flag.ExitOnError)
		dir := fs.String("dir", "", "output directory")
		_ = fs.Parse(os.Args[2:])
		setup(*dir)
	case "mint":
		mint(os.Args[2:])
	case "register":
		register(os.Args[2:])
	case "ws":
		wsMode(os.Args[2:])
	case "relay":
		relay(os.Args[2:])
	case "lookup":
		lookupMode(os.Args[2:])
	case "attack":
		attackMode(os.Args[2:])
	case "floor":
		floorMode(os.Args[2:])
	default:
		die("unknown mode %q", os.Args[1])
	}
}
