// echo_bot: a BotCall bot in Go (package example.invalid/botcall/go/botcall
// over the C ABI). It answers every verified call and sends back what it
// hears, as PCM16 at 16 kHz through io.Copy.
//
//	cargo build -p botcall-ffi
//	go run ./examples/go/echo_bot -daemon http://127.0.0.1:8080 -key bot.jwk -id echo-bot
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"

	"example.invalid/botcall/go/botcall"
)

// config is what the flags say.
type config struct {
	daemon, key, id string
	calls           int // 0: forever
	rate            int
}

// stats counts one call's audio, in bytes of PCM16.
type stats struct{ rx, tx int64 }

// countingReader counts what passes through.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// echo answers call and copies its audio back until it ends.
func echo(call *botcall.Call, rate int) (stats, error) {
	var s stats
	if err := call.Answer(); err != nil {
		return s, err
	}
	if err := call.SetPCMRate(rate); err != nil {
		return s, err
	}
	n, err := io.Copy(call, countingReader{call, &s.rx})
	s.tx = n
	if err != nil && !isEnded(err) {
		return s, err
	}
	return s, nil
}

func isEnded(err error) bool {
	var e *botcall.Error
	return errors.As(err, &e) && e.Code == botcall.ErrEnded
}

// run connects, then echoes calls until cfg.calls are done or ctx ends.
func run(ctx context.Context, cfg config, out io.Writer) error {
	bot, err := botcall.Connect(ctx, cfg.daemon, botcall.Key{File: cfg.key}, botcall.Options{AgentID: cfg.id, Name: "Echo (Go)"})
	if err != nil {
		return err
	}
	defer bot.Close()
	fmt.Fprintf(out, "online %s\n", bot.AgentID())
	for n := 0; cfg.calls == 0 || n < cfg.calls; n++ {
		call, err := bot.NextCall(ctx)
		if err != nil {
			return err
		}
		cl := call.Claims()
		fmt.Fprintf(out, "call %s from %s hv=%s\n", call.ID(), cl.Session, cl.HV)
		s, err := echo(call, cfg.rate)
		code, detail := call.EndReason()
		fmt.Fprintf(out, "call %s ended: %s (%s) rx=%d tx=%d\n", call.ID(), code, detail, s.rx/int64(2*cfg.rate/50), s.tx/int64(2*cfg.rate/50))
		call.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func main() {
	var cfg config
	flag.StringVar(&cfg.daemon, "daemon", "http://127.0.0.1:8080", "daemon URL")
	flag.StringVar(&cfg.key, "key", "", "the bot's JWK file (botcalld keygen)")
	flag.StringVar(&cfg.id, "id", "", "agent id (empty: the key's thumbprint)")
	flag.IntVar(&cfg.calls, "calls", 0, "exit after this many calls (0: never)")
	flag.IntVar(&cfg.rate, "rate", 16000, "PCM sample rate")
	flag.Parse()
	if cfg.key == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}
