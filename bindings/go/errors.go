package mmsession

/*
#cgo pkg-config: mm-session
#include "mm_session.h"
*/
import "C"

import "fmt"

// Status is an mm_status: the result code of a library call. Codes are stable and never
// reused for another meaning.
type Status int32

// The statuses of mm_session.h, one for each mm_status.
const (
	StatusOK                Status = C.MM_OK
	StatusNullArgument      Status = C.MM_ERR_NULL_ARGUMENT
	StatusInvalidArgument   Status = C.MM_ERR_INVALID_ARGUMENT
	StatusInvalidHandle     Status = C.MM_ERR_INVALID_HANDLE
	StatusFileNotFound      Status = C.MM_ERR_FILE_NOT_FOUND
	StatusNotAFile          Status = C.MM_ERR_NOT_A_FILE
	StatusFileUnreadable    Status = C.MM_ERR_FILE_UNREADABLE
	StatusWrongFileKind     Status = C.MM_ERR_WRONG_FILE_KIND
	StatusModelLoad         Status = C.MM_ERR_MODEL_LOAD
	StatusContextCreate     Status = C.MM_ERR_CONTEXT_CREATE
	StatusProjectorLoad     Status = C.MM_ERR_PROJECTOR_LOAD
	StatusProjectorMismatch Status = C.MM_ERR_PROJECTOR_MISMATCH
	StatusCancelled         Status = C.MM_ERR_CANCELLED
	StatusUnsupported       Status = C.MM_ERR_UNSUPPORTED
	StatusMediaCount        Status = C.MM_ERR_MEDIA_COUNT
	StatusMediaDecode       Status = C.MM_ERR_MEDIA_DECODE
	StatusContextFull       Status = C.MM_ERR_CONTEXT_FULL
	StatusTokenize          Status = C.MM_ERR_TOKENIZE
	StatusEval              Status = C.MM_ERR_EVAL
	StatusStateCorrupt      Status = C.MM_ERR_STATE_CORRUPT
	StatusStateMismatch     Status = C.MM_ERR_STATE_MISMATCH
	StatusIO                Status = C.MM_ERR_IO
	StatusBusy              Status = C.MM_ERR_BUSY
	StatusForked            Status = C.MM_ERR_FORKED
	StatusRemote            Status = C.MM_ERR_REMOTE
	StatusInternal          Status = C.MM_ERR_INTERNAL
)

// statusNames gives each status its name in mm_session.h.
var statusNames = map[Status]string{
	StatusOK:                "MM_OK",
	StatusNullArgument:      "MM_ERR_NULL_ARGUMENT",
	StatusInvalidArgument:   "MM_ERR_INVALID_ARGUMENT",
	StatusInvalidHandle:     "MM_ERR_INVALID_HANDLE",
	StatusFileNotFound:      "MM_ERR_FILE_NOT_FOUND",
	StatusNotAFile:          "MM_ERR_NOT_A_FILE",
	StatusFileUnreadable:    "MM_ERR_FILE_UNREADABLE",
	StatusWrongFileKind:     "MM_ERR_WRONG_FILE_KIND",
	StatusModelLoad:         "MM_ERR_MODEL_LOAD",
	StatusContextCreate:     "MM_ERR_CONTEXT_CREATE",
	StatusProjectorLoad:     "MM_ERR_PROJECTOR_LOAD",
	StatusProjectorMismatch: "MM_ERR_PROJECTOR_MISMATCH",
	StatusCancelled:         "MM_ERR_CANCELLED",
	StatusUnsupported:       "MM_ERR_UNSUPPORTED",
	StatusMediaCount:        "MM_ERR_MEDIA_COUNT",
	StatusMediaDecode:       "MM_ERR_MEDIA_DECODE",
	StatusContextFull:       "MM_ERR_CONTEXT_FULL",
	StatusTokenize:          "MM_ERR_TOKENIZE",
	StatusEval:              "MM_ERR_EVAL",
	StatusStateCorrupt:      "MM_ERR_STATE_CORRUPT",
	StatusStateMismatch:     "MM_ERR_STATE_MISMATCH",
	StatusIO:                "MM_ERR_IO",
	StatusBusy:              "MM_ERR_BUSY",
	StatusForked:            "MM_ERR_FORKED",
	StatusRemote:            "MM_ERR_REMOTE",
	StatusInternal:          "MM_ERR_INTERNAL",
}

// Sentinel errors, one for each failing status: errors.Is(err, ErrContextFull) is true for
// every *Error of that status, whatever its message.
var (
	ErrNullArgument      = &Error{Status: StatusNullArgument}
	ErrInvalidArgument   = &Error{Status: StatusInvalidArgument}
	ErrInvalidHandle     = &Error{Status: StatusInvalidHandle}
	ErrFileNotFound      = &Error{Status: StatusFileNotFound}
	ErrNotAFile          = &Error{Status: StatusNotAFile}
	ErrFileUnreadable    = &Error{Status: StatusFileUnreadable}
	ErrWrongFileKind     = &Error{Status: StatusWrongFileKind}
	ErrModelLoad         = &Error{Status: StatusModelLoad}
	ErrContextCreate     = &Error{Status: StatusContextCreate}
	ErrProjectorLoad     = &Error{Status: StatusProjectorLoad}
	ErrProjectorMismatch = &Error{Status: StatusProjectorMismatch}
	ErrCancelled         = &Error{Status: StatusCancelled}
	ErrUnsupported       = &Error{Status: StatusUnsupported}
	ErrMediaCount        = &Error{Status: StatusMediaCount}
	ErrMediaDecode       = &Error{Status: StatusMediaDecode}
	ErrContextFull       = &Error{Status: StatusContextFull}
	ErrTokenize          = &Error{Status: StatusTokenize}
	ErrEval              = &Error{Status: StatusEval}
	ErrStateCorrupt      = &Error{Status: StatusStateCorrupt}
	ErrStateMismatch     = &Error{Status: StatusStateMismatch}
	ErrIO                = &Error{Status: StatusIO}
	ErrBusy              = &Error{Status: StatusBusy}
	ErrForked            = &Error{Status: StatusForked}
	ErrRemote            = &Error{Status: StatusRemote}
	ErrInternal          = &Error{Status: StatusInternal}

	// ErrClosed is what a closed session answers: it is ErrInvalidHandle, the status the
	// library gives a destroyed handle (the binding answers it without passing the handle).
	ErrClosed = ErrInvalidHandle
)

// String gives the status's name in mm_session.h, such as "MM_ERR_CONTEXT_FULL".
func (s Status) String() string {
	if name, ok := statusNames[s]; ok {
		return name
	}
	return fmt.Sprintf("mm_status(%d)", int32(s))
}

// Description is the library's short description of the status (mm_status_str).
func (s Status) Description() string {
	return C.GoString(C.mm_status_str(C.int32_t(s)))
}

// Error is a failed call: the library's status and its message for the call (mm_last_error,
// read on the thread of the call), which names the function, the file and the cause. A call
// cancelled through its context also wraps the context's error (Unwrap).
type Error struct {
	Status  Status
	Message string
	cause   error
}

// Error gives the status's name and number, then the message.
func (e *Error) Error() string {
	text := fmt.Sprintf("mm-session: %s (%d)", e.Status, int32(e.Status))
	if e.Message != "" {
		text += ": " + e.Message
	}
	if e.cause != nil {
		text += ": " + e.cause.Error()
	}
	return text
}

// Unwrap gives the context error of a cancelled call (context.Canceled or
// context.DeadlineExceeded), or nil.
func (e *Error) Unwrap() error { return e.cause }

// Is makes errors.Is(err, target) true when target is an *Error of the same status, such as
// the sentinel ErrContextFull.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

// newError is the error of status with message (nil for StatusOK).
func newError(status Status, message string) error {
	if status == StatusOK {
		return nil
	}
	return &Error{Status: status, Message: message}
}
