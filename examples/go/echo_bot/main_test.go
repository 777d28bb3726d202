package main

// Run by tests/ffi_go.rs: the Go echo bot registers as ec-bot with the real
// daemon in BOTCALL_TEST_DAEMON; the Rust test caller calls it twice (PCM16
// through io.Copy, then Opus packets), checks it hears its own tone back, and
// hangs up with reason "bye".

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is written by run and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	os.Stdout.Write(p)
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEchoBotAnswersACall(t *testing.T) {
	daemon, key := os.Getenv("BOTCALL_TEST_DAEMON"), os.Getenv("BOTCALL_TEST_KEY")
	if daemon == "" || key == "" {
		t.Skip("BOTCALL_TEST_DAEMON is not set: run through `cargo test --test ffi_go`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out syncBuffer
	if err := run(ctx, config{daemon: daemon, key: key, id: "ec-bot", calls: 2, rate: 16000, mode: "alternate"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	calls := 0
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.Contains(l, " ended: ") {
			continue
		}
		var id, code, opus string
		var rx, tx int
		if _, err := fmt.Sscanf(l, "call %s ended: %s (bye) rx=%d tx=%d opus=%s", &id, &code, &rx, &tx, &opus); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if code != "remote_hangup" || rx < 100 || tx < 100 || opus != fmt.Sprint(calls == 1) {
			t.Fatalf("call %d: code %q, rx %d, tx %d frames, opus %s\n%s", calls, code, rx, tx, opus, out.String())
		}
		calls++
	}
	if calls != 2 {
		t.Fatalf("%d calls ended\n%s", calls, out.String())
	}
}
