package botcall

// #include "botcall.h"
import "C"

import (
	"errors"
	"fmt"
)

// Code is a status code of the C ABI (BOTCALL_ERR_*, BOTCALL_ATT_*). Every
// *Error wraps one, so errors.Is(err, botcall.ErrKey) works.
type Code int32

// The ABI's status codes (botcall.h).
const (
	ErrInvalidArgument Code = C.BOTCALL_ERR_INVALID_ARGUMENT
	ErrConfig          Code = C.BOTCALL_ERR_CONFIG
	ErrKey             Code = C.BOTCALL_ERR_KEY
	ErrAuth            Code = C.BOTCALL_ERR_AUTH
	ErrUnavailable     Code = C.BOTCALL_ERR_UNAVAILABLE
	ErrTimeout         Code = C.BOTCALL_ERR_TIMEOUT
	ErrEnded           Code = C.BOTCALL_ERR_ENDED
	ErrClosed          Code = C.BOTCALL_ERR_CLOSED
	ErrBufferTooSmall  Code = C.BOTCALL_ERR_BUFFER_TOO_SMALL
	ErrMedia           Code = C.BOTCALL_ERR_MEDIA
	ErrCancelled       Code = C.BOTCALL_ERR_CANCELLED
	ErrWrongState      Code = C.BOTCALL_ERR_WRONG_STATE
	ErrMalformed       Code = C.BOTCALL_ERR_MALFORMED
	ErrPanic           Code = C.BOTCALL_ERR_PANIC
	ErrInternal        Code = C.BOTCALL_ERR_INTERNAL
)

// Error returns the code's stable name ("key", "timeout", "forged", …).
func (c Code) Error() string {
	return C.GoString(C.botcall_status_name(C.BotcallStatus(c)))
}

// Error is a failed call into the ABI: which operation, the code, and the
// library's message (botcall_last_error). A wait ended by a context also
// matches that context's error (errors.Is(err, context.Canceled)).
type Error struct {
	Op      string
	Code    Code
	Message string
	cause   error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("botcall: %s: %s", e.Op, e.Code)
	}
	return fmt.Sprintf("botcall: %s: %s: %s", e.Op, e.Code, e.Message)
}

// Unwrap returns the ABI code.
func (e *Error) Unwrap() error { return e.Code }

// Is matches the code, and the context error that cancelled the wait.
func (e *Error) Is(target error) bool {
	if c, ok := target.(Code); ok {
		return c == e.Code
	}
	return e.cause != nil && errors.Is(e.cause, target)
}

// lastError builds the *Error for status s, reading botcall_last_error on
// this OS thread: call it right after the C call, on the same goroutine
// (LockOSThread is held by callers, see call()).
func lastError(op string, s C.BotcallStatus) error {
	if s == C.BOTCALL_OK {
		return nil
	}
	var buf [512]C.char
	C.botcall_last_error(&buf[0], C.size_t(len(buf)))
	return &Error{Op: op, Code: Code(s), Message: C.GoString(&buf[0])}
}
