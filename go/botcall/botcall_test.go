package botcall_test

// Run by tests/ffi_go.rs (cargo test --test ffi_go), which starts a real
// botcalld on loopback and passes it in BOTCALL_TEST_DAEMON, with
// BOTCALL_TEST_KEY (a key the daemon accepts for ec-bot-2) and
// BOTCALL_TEST_OTHER_KEY (one it does not).

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"example.invalid/botcall/go/botcall"
)

func env(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Skipf("%s is not set: run through `cargo test --test ffi_go`", name)
	}
	return v
}

func TestABIVersionMatches(t *testing.T) {
	if botcall.LibraryABIVersion()>>16 != botcall.ABIVersion>>16 {
		t.Fatalf("libbotcall ABI %#x, package built for %#x", botcall.LibraryABIVersion(), botcall.ABIVersion)
	}
}

func TestMalformedKeyIsAWrappedError(t *testing.T) {
	ctx := context.Background()
	for _, key := range []botcall.Key{{JWK: []byte("not a JWK")}, {File: "/nonexistent/bot.jwk"}} {
		bot, err := botcall.Connect(ctx, "http://127.0.0.1:9", key, botcall.Options{AgentID: "ec-bot-2"})
		if bot != nil || err == nil {
			t.Fatalf("%+v: connected", key)
		}
		if !errors.Is(err, botcall.ErrKey) {
			t.Fatalf("%+v: %v is not ErrKey", key, err)
		}
		var e *botcall.Error
		if !errors.As(err, &e) || e.Op != "connect" || e.Message == "" {
			t.Fatalf("%+v: %#v", key, err)
		}
	}
}

func TestRefusedKeyIsAWrappedError(t *testing.T) {
	daemon, other := env(t, "BOTCALL_TEST_DAEMON"), env(t, "BOTCALL_TEST_OTHER_KEY")
	_, err := botcall.Connect(context.Background(), daemon, botcall.Key{File: other}, botcall.Options{AgentID: "ec-bot-2"})
	if !errors.Is(err, botcall.ErrAuth) {
		t.Fatalf("a key the daemon does not know for ec-bot-2: %v, want ErrAuth", err)
	}
	if !strings.Contains(err.Error(), "401") {
		t.Fatalf("the message should carry the daemon's answer: %v", err)
	}
}

func TestCancelledContextEndsABlockingWait(t *testing.T) {
	daemon, key := env(t, "BOTCALL_TEST_DAEMON"), env(t, "BOTCALL_TEST_KEY")
	bot, err := botcall.Connect(context.Background(), daemon, botcall.Key{File: key}, botcall.Options{AgentID: "ec-bot-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer bot.Close()

	// Cancelled while NextCall blocks (no call ever comes).
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	call, err := bot.NextCall(ctx)
	if call != nil || !errors.Is(err, context.Canceled) || !errors.Is(err, botcall.ErrCancelled) {
		t.Fatalf("NextCall after cancel: %v, %v", call, err)
	}

	// A deadline ends it the same way.
	ctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := bot.NextCall(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NextCall past its deadline: %v", err)
	}

	// Already cancelled: returns at once.
	if _, err := bot.NextCall(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NextCall with a done context: %v", err)
	}
}

func TestCloseWakesABlockedNextCall(t *testing.T) {
	daemon, key := env(t, "BOTCALL_TEST_DAEMON"), env(t, "BOTCALL_TEST_KEY")
	bot, err := botcall.Connect(context.Background(), daemon, botcall.Key{File: key}, botcall.Options{AgentID: "ec-bot-2"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		bot.Close()
	}()
	// No context to cancel: Close from another goroutine ends the wait.
	if _, err := bot.NextCall(context.Background()); !errors.Is(err, botcall.ErrClosed) {
		t.Fatalf("NextCall when the bot is closed: %v", err)
	}
	if _, err := bot.NextCall(context.Background()); !errors.Is(err, botcall.ErrClosed) {
		t.Fatalf("NextCall after Close: %v", err)
	}
	if err := bot.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}
