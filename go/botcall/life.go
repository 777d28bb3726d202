package botcall

// #include "botcall.h"
import "C"

import (
	"context"
	"sync"
)

// life lets Close run while other goroutines are blocked on the same
// handle: it wakes their waits (each wait has a cancellation token that
// Close triggers), waits until they have returned, and only then frees the
// handle. Methods called after Close return ErrClosed.
type life struct {
	mu     sync.Mutex
	closed bool
	ops    sync.WaitGroup
	tokens map[*C.BotcallCancel]struct{}
}

// enter marks a method in flight; false once closed.
func (l *life) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.ops.Add(1)
	return true
}

func (l *life) leave() { l.ops.Done() }

func (l *life) track(tok *C.BotcallCancel) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens == nil {
		l.tokens = make(map[*C.BotcallCancel]struct{})
	}
	l.tokens[tok] = struct{}{}
	if l.closed {
		C.botcall_cancel_trigger(tok)
	}
}

func (l *life) untrack(tok *C.BotcallCancel) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.tokens, tok)
}

// close wakes every wait in flight and returns once all methods have left;
// false if it was closed already.
func (l *life) close() bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	for tok := range l.tokens {
		C.botcall_cancel_trigger(tok)
	}
	l.mu.Unlock()
	l.ops.Wait()
	return true
}

func closedError(op string) error {
	return &Error{Op: op, Code: ErrClosed, Message: "closed"}
}

// wait runs a blocking C call (entered on l) with a cancellation token that
// ctx and Close trigger.
func wait(ctx context.Context, l *life, op string, f func(tok *C.BotcallCancel) C.BotcallStatus) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: op, Code: ErrCancelled, Message: err.Error(), cause: err}
	}
	tok := C.botcall_cancel_new()
	defer C.botcall_cancel_free(tok)
	l.track(tok)
	defer l.untrack(tok) // before the free: Close never triggers a freed token
	if done := ctx.Done(); done != nil {
		stop, watched := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-done:
				C.botcall_cancel_trigger(tok)
			case <-stop:
			}
		}()
		defer func() {
			close(stop)
			<-watched // the token is not freed while the watcher may trigger it
		}()
	}
	err := call(op, func() C.BotcallStatus { return f(tok) })
	if e, ok := err.(*Error); ok && e.Code == ErrCancelled {
		if ctx.Err() != nil {
			e.cause = ctx.Err()
		} else {
			return closedError(op)
		}
	}
	return err
}
