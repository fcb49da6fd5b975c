package mmsession

/*
#cgo pkg-config: mm-session
#include <stdlib.h>
#include "mm_session.h"

// The Go function of callbacks.go that receives log messages.
extern void mmgoLog(void *user_data, int32_t level, char *message);

static void mmgo_on_log(void *user_data, int32_t level, const char *message) {
	mmgoLog(user_data, level, (char *)message);
}

// Routes the library's logs of min_level and above to mmgoLog.
static enum mm_status mmgo_log_to_go(int32_t min_level) {
	return mm_log_set(min_level, mmgo_on_log, NULL);
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
)

// Level is an mm_log_level.
type Level int32

// Log levels; LogOff as a minimum silences the library.
const (
	LogDebug Level = C.MM_LOG_DEBUG
	LogInfo  Level = C.MM_LOG_INFO
	LogWarn  Level = C.MM_LOG_WARN
	LogError Level = C.MM_LOG_ERROR
	LogOff   Level = C.MM_LOG_OFF
)

// String names the level: "debug", "info", "warn", "error", "off".
func (l Level) String() string {
	switch l {
	case LogDebug:
		return "debug"
	case LogInfo:
		return "info"
	case LogWarn:
		return "warn"
	case LogError:
		return "error"
	case LogOff:
		return "off"
	}
	return fmt.Sprintf("Level(%d)", int32(l))
}

// Logger receives one log message of llama.cpp, ggml, mtmd or mm-session, as printed (often
// ending in a newline). It may run on any thread, also one the library started, at any time,
// and must not call into mm-session.
type Logger func(level Level, message string)

// logger is the Logger of SetLogger. The library may still call the previous callback for a
// moment after mm_log_set returns (it calls outside its lock), so the C side takes no user data
// that could be freed: mmgoLog reads this variable.
var logger atomic.Pointer[Logger]

// SetLogger sends the library's log messages of level min and above to fn, or to stderr when fn
// is nil; LogOff silences them. The default is LogWarn to stderr. When it fails (a level that
// is not a Level), the previous setting stays.
func SetLogger(min Level, fn Logger) error {
	var next *Logger
	route := func() uint32 { return C.mm_log_set(C.int32_t(min), nil, nil) }
	if fn != nil {
		next = &fn
		route = func() uint32 { return C.mmgo_log_to_go(C.int32_t(min)) }
	}
	previous := logger.Swap(next)
	err := libCall(route)
	if err != nil {
		logger.Store(previous)
	}
	return err
}

// logMessage hands one message to the Logger. A panic in it cannot go up through the C frames
// of the thread that logs: it is reported on stderr instead.
func logMessage(level Level, message string) {
	fn := logger.Load()
	if fn == nil {
		os.Stderr.WriteString(message)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "mmsession: the Logger panicked: %v\n", r)
		}
	}()
	(*fn)(level, message)
}

// Version is the library's version, "MAJOR.MINOR.PATCH" (mm_version).
func Version() string { return C.GoString(C.mm_version()) }

// VersionNumber is the library's version as MAJOR*10000 + MINOR*100 + PATCH
// (mm_version_number).
func VersionNumber() int { return int(C.mm_version_number()) }

// BuildInfo says what the library was built for: its version, the target CPU and each backend
// with the features it was compiled with (mm_build_info).
func BuildInfo() string { return C.GoString(C.mm_build_info()) }

// HeaderVersionNumber is MM_VERSION_NUMBER of the header this package was built with.
const HeaderVersionNumber = C.MM_VERSION_NUMBER

// LiveSessions is the number of sessions that exist now in this process: opened (or forked)
// and not yet closed.
func LiveSessions() int { return int(C.mm_live_sessions()) }

// LoadedModels is the number of text models (each with its projector) loaded now in this
// process: a session and its forks share one.
func LoadedModels() int { return int(C.mm_loaded_models()) }

// libCall runs one library call (it returns an mm_status, a uint32 in cgo) and, when it fails, reads mm_last_error on the same OS thread
// (the message is per thread, and a goroutine may change threads between two cgo calls).
func libCall(call func() uint32) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if status := Status(call()); status != StatusOK {
		return newError(status, C.GoString(C.mm_last_error()))
	}
	return nil
}
