package mmsession

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rpcServer starts mm-rpc-server (built next to mm-fixtures) on a free port until the test
// ends, and returns its address.
func rpcServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(fixturesBin()), "mm-rpc-server")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no mm-rpc-server next to mm-fixtures: %v", err)
	}
	address := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	server := exec.Command(bin, "--port", strings.TrimPrefix(address, "127.0.0.1:"), "--threads", "1")
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.Process.Kill()
		server.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", address); err == nil {
			c.Close()
			return address
		}
		if time.Now().After(deadline) {
			t.Fatalf("mm-rpc-server is not listening on %s", address)
		}
	}
}

// The layers go to an RPC server and the greedy answer stays the same; bad lists and shares,
// and a server nobody runs, are refused with their statuses.
func TestRPCServersAndTensorSplit(t *testing.T) {
	req := Request{Prompt: "Describe <__media__> in a few words.", Media: []Media{File(fixture("tiny-image.png"))}, MaxTokens: 12, Temperature: Ptr(0.0)}
	local := open(t, tinyParams())
	want, err := local.Ask(context.Background(), req)
	if err != nil || want == "" {
		t.Fatalf("local answer %q, %v", want, err)
	}

	p := tinyParams()
	p.RPCServers, p.TensorSplit = rpcServer(t), []float64{1}
	remote := open(t, p)
	if got, err := remote.Ask(context.Background(), req); got != want || err != nil {
		t.Errorf("with the layers on the server: %q, %v; local: %q", got, err, want)
	}
	if mem, _ := remote.Memory(); mem.ModelGPU == 0 {
		t.Errorf("no model bytes on the server's device: %+v", mem)
	}

	for name, bad := range map[string]Params{
		"a list that is not host:port": {RPCServers: "host"},
		"more shares than devices":     {RPCServers: p.RPCServers, TensorSplit: []float64{1, 1, 1}},
		"a negative share":             {RPCServers: p.RPCServers, TensorSplit: []float64{-1}},
	} {
		bad.Model, bad.Mmproj, bad.NThreads = p.Model, p.Mmproj, 1
		if _, err := Open(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	nobody := tinyParams()
	nobody.RPCServers = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if _, err := Open(nobody); !errors.Is(err, ErrRemote) {
		t.Errorf("a server nobody runs: %v", err)
	}
}
