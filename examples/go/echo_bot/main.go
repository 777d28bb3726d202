// echo_bot: a BotCall bot in Go (package example.invalid/botcall/go/botcall
// over the C ABI). It answers every verified call and sends back what it
// hears: as PCM16 at 16 kHz through io.Copy (-mode pcm), as Opus packets
// (-mode opus), or each in turn (-mode alternate).
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
	mode            string // pcm, opus, alternate
}

// stats counts one call's audio in 20 ms frames.
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

// echo answers call and copies its audio back until it ends; rx and tx are
// counted in 20 ms frames.
func echo(ctx context.Context, call *botcall.Call, rate int, opus bool) (stats, error) {
	var s stats
	if err := call.Answer(); err != nil {
		return s, err
	}
	if opus {
		for {
			pkt, err := call.ReadPacket(ctx)
			if err != nil {
				return s, ignoreEnded(err)
			}
			s.rx++
			if err := call.WritePacket(ctx, pkt); err != nil {
				return s, ignoreEnded(err)
			}
			s.tx++
		}
	}
	if err := call.SetPCMRate(rate); err != nil {
		return s, err
	}
	var rxBytes int64
	n, err := io.Copy(call, countingReader{call, &rxBytes})
	frame := int64(2 * rate / 50)
	s.rx, s.tx = rxBytes/frame, n/frame
	return s, ignoreEnded(err)
}

func ignoreEnded(err error) error {
	if isEnded(err) {
		return nil
	}
	return err
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
		opus := cfg.mode == "opus" || (cfg.mode == "alternate" && n%2 == 1)
		s, err := echo(ctx, call, cfg.rate, opus)
		code, detail := call.EndReason()
		fmt.Fprintf(out, "call %s ended: %s (%s) rx=%d tx=%d opus=%v\n", call.ID(), code, detail, s.rx, s.tx, opus)
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
	flag.StringVar(&cfg.mode, "mode", "pcm", "pcm, opus or alternate")
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
