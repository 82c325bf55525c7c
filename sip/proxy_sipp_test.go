package sip

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// freeUDPPort returns a port that was free a moment ago on 127.0.0.1.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// TestSippProxyCall runs sipp as caller and callee through the proxy:
// INVITE-407-ACK-INVITE-100-180-200-ACK-BYE-200, 10 calls. The sipp UAS
// cannot REGISTER, so its binding is loaded from the binding store as a
// restart would.
func TestSippProxyCall(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatal("sipp not found: install sip-tester (apt-get install -y sip-tester)")
	}
	uasPort := freeUDPPort(t)
	uasAddr := fmt.Sprintf("127.0.0.1:%d", uasPort)
	store := preStore{bs: []Binding{{AOR: "sip:1002@hotdesk.test", Contact: "sip:1002@" + uasAddr,
		Source: uasAddr, Transport: "UDP", Expires: time.Now().Add(time.Hour), Owner: Owner{OwnerUser, "bob"}}}}
	e := startProxyEnv(t, func(_ *Config, _ *ProxyConfig, d *Deps) { d.Bindings = store })
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "callers.csv"), []byte("SEQUENTIAL\n1001;\n"), 0o600)
	uac, _ := filepath.Abs("testdata/proxy_uac.xml")
	uas, _ := filepath.Abs("testdata/proxy_uas.xml")
	const calls = 10
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	uasCmd := exec.CommandContext(ctx, sipp, "-sf", uas, "-i", "127.0.0.1", "-p", fmt.Sprint(uasPort),
		"-m", fmt.Sprint(calls), "-nostdin", "-nd", "-timeout", "30s", "-trace_err", "-error_file", filepath.Join(dir, "uas.err"))
	uasCmd.Dir = dir
	uasOut := &tailBuffer{}
	uasCmd.Stdout, uasCmd.Stderr = uasOut, uasOut
	if err := uasCmd.Start(); err != nil {
		t.Fatal(err)
	}
	uasDone := make(chan error, 1)
	go func() { uasDone <- uasCmd.Wait() }()
	time.Sleep(200 * time.Millisecond)
	uacCmd := exec.CommandContext(ctx, sipp, "-sf", uac, "-inf", filepath.Join(dir, "callers.csv"), e.udp,
		"-s", "bob", "-au", "1001", "-ap", "alice-sip", "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-m", fmt.Sprint(calls), "-r", "20", "-nostdin", "-nd", "-timeout", "30s",
		"-trace_err", "-error_file", filepath.Join(dir, "uac.err"))
	uacCmd.Dir = dir
	out, err := uacCmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "uac.err"))
		t.Fatalf("sipp uac: %v\n%s\n%s", err, tail(string(out), 2000), tail(string(errs), 3000))
	}
	select {
	case err := <-uasDone:
		if err != nil {
			errs, _ := os.ReadFile(filepath.Join(dir, "uas.err"))
			t.Fatalf("sipp uas: %v\n%s\n%s", err, uasOut.String(), tail(string(errs), 3000))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sipp uas did not finish its calls")
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_calls_total", map[string]string{"route": RouteInternal, "result": "answered"}); n != calls {
		t.Errorf("answered calls %v, want %d", n, calls)
	}
	deadline := time.Now().Add(2 * time.Second)
	for metricValue(t, e, "hotdesk_sip_proxy_active_dialogs", nil) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_active_dialogs", nil); n != 0 {
		t.Errorf("active dialogs %v after all BYEs", n)
	}
}

// tailBuffer keeps the last 4 KiB a process wrote.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > 4096 {
		w.b = w.b[len(w.b)-4096:]
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
