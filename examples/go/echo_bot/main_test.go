package main

// Run by tests/ffi_go.rs: the Go echo bot registers as ec-bot with the real
// daemon in BOTCALL_TEST_DAEMON; the Rust test caller calls it, checks it
// hears its own tone back, and hangs up with reason "bye".

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
	if err := run(ctx, config{daemon: daemon, key: key, id: "ec-bot", calls: 1, rate: 16000}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	var id, code string
	var rx, tx int
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, " ended: ") {
			if _, err := fmt.Sscanf(l, "call %s ended: %s (bye) rx=%d tx=%d", &id, &code, &rx, &tx); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
		}
	}
	if code != "remote_hangup" || rx < 100 || tx < 100 {
		t.Fatalf("the call: code %q, rx %d, tx %d frames\n%s", code, rx, tx, out.String())
	}
}
