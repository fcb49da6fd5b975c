package mmsession

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// header is the text of the mm_session.h this package was built with (pkg-config's includedir).
func header(t *testing.T) string {
	t.Helper()
	dir, err := exec.Command("pkg-config", "--variable=includedir", "mm-session").Output()
	if err != nil {
		t.Fatalf("pkg-config --variable=includedir mm-session: %v", err)
	}
	text, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "mm_session.h"))
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

// source is the package's own Go source, tests left out.
func source(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(text)
	}
	return all.String()
}

// Every function of the header is called by this package.
func TestEveryExportIsBound(t *testing.T) {
	src := source(t)
	exports := regexp.MustCompile(`(?m)^[a-z].*\b(mm_\w+)\(`).FindAllStringSubmatch(header(t), -1)
	if len(exports) < 20 {
		t.Fatalf("found only %d exports in the header", len(exports))
	}
	for _, e := range exports {
		if !strings.Contains(src, "C."+e[1]+"(") {
			t.Errorf("%s is not called by the package", e[1])
		}
	}
}

// Every field of the structs the package binds is bound by a tag, or handled by hand (named
// here), or is struct_size or reserved.
func TestEveryFieldIsBound(t *testing.T) {
	byHand := map[reflect.Type][]string{
		cSessionParams: {"progress_callback", "progress_user_data", "tensor_split", "n_tensor_split"},
		cAskParams: {"prompt", "media", "n_media", "stop", "n_stop", "on_text", "user_data", "messages", "n_messages", "logit_bias", "n_logit_bias", "on_token",
			"message_ext", "tools", "on_reasoning", "on_tool_call"},
	}
	maps := map[reflect.Type]fieldMap{
		cSessionParams: sessionFields, cForkParams: forkFields, cAskParams: askFields,
		cSessionInfo: infoFields, cMemoryStats: memoryFields, cAskInfo: askInfoFields,
	}
	for cType, m := range maps {
		bound := map[string]bool{"struct_size": true}
		for _, name := range byHand[cType] {
			bound[name] = true
		}
		for _, l := range m {
			bound[l.cName] = true
		}
		for i := 0; i < cType.NumField(); i++ {
			name := cType.Field(i).Name
			if !bound[name] && !strings.HasPrefix(name, "reserved") {
				t.Errorf("%s.%s is not bound", cType, name)
			}
		}
	}
}

// Every status the library knows has a name and a sentinel, and errors.Is finds it.
func TestEveryStatusHasASentinel(t *testing.T) {
	sentinels := []*Error{ErrNullArgument, ErrInvalidArgument, ErrInvalidHandle, ErrFileNotFound, ErrNotAFile,
		ErrFileUnreadable, ErrWrongFileKind, ErrModelLoad, ErrContextCreate, ErrProjectorLoad, ErrProjectorMismatch,
		ErrCancelled, ErrUnsupported, ErrMediaCount, ErrMediaDecode, ErrContextFull, ErrTokenize, ErrEval,
		ErrStateCorrupt, ErrStateMismatch, ErrIO, ErrBusy, ErrForked, ErrRemote, ErrInternal}
	unknown := Status(-1).Description()
	known := 0
	for code := Status(0); code < 256; code++ {
		if code.Description() == unknown {
			continue
		}
		known++
		if _, ok := statusNames[code]; !ok {
			t.Errorf("status %d (%s) has no name", code, code.Description())
		}
		if code == StatusOK {
			continue
		}
		err := error(&Error{Status: code, Message: "m"})
		matches := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				matches++
			}
		}
		if matches != 1 {
			t.Errorf("status %s matches %d sentinels", code, matches)
		}
		if text := err.Error(); !strings.Contains(text, code.String()) || !strings.HasSuffix(text, ": m") {
			t.Errorf("error text %q", text)
		}
	}
	if known != len(statusNames) {
		t.Errorf("the library knows %d statuses, the package names %d", known, len(statusNames))
	}
	if errors.Is(ErrContextFull, ErrCancelled) || !errors.Is(ErrClosed, ErrInvalidHandle) {
		t.Error("sentinels of different statuses match")
	}
}
