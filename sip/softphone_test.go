package sip

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// baresipUA is one baresip process with its own config directory.
type baresipUA struct {
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan error
}

// startBaresip runs baresip (Debian's 1.0 package) as user/password through
// the registrar at proxy, on 127.0.0.1 only, with a sine tone as microphone
// and no sound card. extra are -e commands run at start.
//
// baresip binds its SIP port for UDP and TCP; another process on the
// machine may take a port between the test choosing it and baresip binding
// it, so a start that fails with "Address already in use" is tried again
// on another port (bounded).
func startBaresip(t *testing.T, ctx context.Context, user, password, proxy string, extra ...string) *baresipUA {
	t.Helper()
	bin, err := exec.LookPath("baresip")
	if err != nil {
		t.Fatal("baresip not found: install baresip-core (apt-get install -y --no-install-recommends baresip-core; .ci/install-deps.sh does)")
	}
	for range 5 {
		if b := tryBaresip(t, ctx, bin, user, password, proxy, extra...); b != nil {
			return b
		}
	}
	t.Fatal("baresip: no free SIP port in 5 tries")
	return nil
}

// tryBaresip starts baresip once; nil when its port was taken meanwhile.
func tryBaresip(t *testing.T, ctx context.Context, bin, user, password, proxy string, extra ...string) *baresipUA {
	t.Helper()
	dir := t.TempDir()
	conf := strings.Join([]string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen 127.0.0.1:%d", freeUDPTCPPort(t)),
		"sip_transports udp",
		"net_interface 127.0.0.1",
		"audio_player aufile," + filepath.Join(dir, "heard.wav"),
		"audio_source ausine,440",
		"ausrc_srate 48000",
		"ausrc_channels 2",
		"audio_alert aufile," + filepath.Join(dir, "alert.wav"),
		"rtp_ports 30000-40000",
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module ausine.so",
		"module aufile.so",
		"module_app account.so",
		"module_app menu.so",
		"",
	}, "\n")
	acct := fmt.Sprintf("<sip:%s@hotdesk.test;transport=udp>;auth_pass=%s;outbound=\"sip:%s;transport=udp\";regint=600;answermode=auto;audio_codecs=PCMU\n",
		user, password, proxy)
	for name, body := range map[string]string{"config": conf, "accounts": acct, "contacts": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-f", dir, "-4"}
	for _, e := range extra {
		args = append(args, "-e", e)
	}
	b := &baresipUA{cmd: exec.CommandContext(ctx, bin, args...), out: &tailBuffer{}, done: make(chan error, 1)}
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	b.cmd.Stdin = nil
	b.cmd.WaitDelay = 2 * time.Second
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	// Ready, or failed to bind (it then stops by itself).
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		out := b.out.String()
		if strings.Contains(out, "Address already in use") {
			_ = b.cmd.Process.Kill()
			<-b.done
			return nil
		}
		if strings.Contains(out, "baresip is ready.") {
			break
		}
	}
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.done
	})
	return b
}

// freeUDPTCPPort returns a port free on 127.0.0.1 for both UDP and TCP
// when it was chosen.
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// waitFor polls cond until it holds or the deadline passes (bounded).
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool, logs ...*baresipUA) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		exited := false
		for _, l := range logs {
			select {
			case err := <-l.done:
				l.done <- err
				exited = true
			default:
			}
		}
		if exited || time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range logs {
				b.WriteString(l.out.String())
				b.WriteString("\n----\n")
			}
			t.Fatalf("%s: not within %v\n%s", what, d, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBaresipRegisterAndCall: two real baresip 1.0 softphones, with the
// default configuration (MD5 and SHA-256 accepted), register and call each
// other through the proxy; the callee answers automatically. Before
// challenges were chosen per client, baresip failed on the SHA-256
// challenge ("Function not implemented") and never registered.
func TestBaresipRegisterAndCall(t *testing.T) {
	e := startProxyEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bob := startBaresip(t, ctx, "1002", "bob-sip", e.udp)
	registered := func(user string) func() bool {
		return func() bool { return len(e.srv.Lookup(ctx, user)) > 0 }
	}
	waitFor(t, "baresip 1002 registered", 20*time.Second, registered("1002"), bob)
	// baresip reads commands on stdin only with its stdio module (a tty);
	// the caller dials with -e at start, while its account registers.
	caller := startBaresip(t, ctx, "1001", "alice-sip", e.udp, "/dial sip:1002@hotdesk.test")
	waitFor(t, "baresip 1001 registered", 20*time.Second, registered("1001"), caller)
	answered := func() bool {
		return metricValue(t, e, "hotdesk_sip_proxy_calls_total",
			map[string]string{"route": RouteInternal, "result": "answered"}) >= 1
	}
	waitFor(t, "call 1001 → 1002 answered through the proxy", 30*time.Second, answered, caller, bob)
	if n := metricValue(t, e, "hotdesk_sip_proxy_active_dialogs", nil); n != 1 {
		t.Errorf("active dialogs %v during the call, want 1", n)
	}
}
