package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// inNamespace runs f on an OS thread switched into the named network
// namespace; sockets f opens stay there.
func inNamespace(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err) // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// TestSIPPlugAndPlayThroughNetns: the daemon (sip.pnp on its LAN interface,
// the registrar on 0.0.0.0:5060 beside it) runs in one namespace; a Yealink's
// multicast SUBSCRIBE from another gets 200 and a NOTIFY with the daemon's
// provisioning URL, and the phone is enrolled.
func TestSIPPlugAndPlayThroughNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING SIP plug-and-play netns test: it needs root to create network namespaces (make test runs as root)")
	}
	bin := buildBinary(t)
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	srv, cli, srvIf, cliIf := "hdq-"+id+"-s", "hdq-"+id+"-c", "hdq"+id+"s", "hdq"+id+"c"
	prefix := fmt.Sprintf("10.79.%d", os.Getpid()%250+1)
	serverIP, phoneIP := prefix+".1", prefix+".60"
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, ns := range []string{srv, cli} {
		sh("ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	}
	sh("ip", "link", "add", srvIf, "type", "veth", "peer", "name", cliIf)
	sh("ip", "link", "set", srvIf, "netns", srv)
	sh("ip", "link", "set", cliIf, "netns", cli)
	sh("ip", "-n", srv, "addr", "add", serverIP+"/24", "dev", srvIf)
	sh("ip", "-n", cli, "addr", "add", phoneIP+"/24", "dev", cliIf)
	for _, x := range [][2]string{{srv, srvIf}, {cli, cliIf}} {
		sh("ip", "-n", x[0], "link", "set", "lo", "up")
		sh("ip", "-n", x[0], "link", "set", x[1], "up")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "hotdesk.yaml")
	if err := os.WriteFile(conf, []byte(`data_dir: `+filepath.Join(dir, "data")+`
admin: {listen: "127.0.0.1:18582", initial_password: "netns-admin-pw"}
provisioning: {http_listen: "0.0.0.0:8080", tftp_listen: ""}
sip:
  listen: ["udp://0.0.0.0:5060"]
  domain: lan.test
  pnp: {enabled: true, interface: `+srvIf+`}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	daemon := exec.CommandContext(ctx, "ip", "netns", "exec", srv, bin, "serve", "-c", conf)
	stderr, _ := daemon.StderrPipe()
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = daemon.Process.Kill(); _ = daemon.Wait() })
	logs := &strings.Builder{}
	readyc := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "msg=ready") {
				close(readyc)
			}
		}
	}()
	select {
	case <-readyc:
	case <-exited:
		t.Fatalf("daemon exited:\n%s", logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon not ready in its namespace:\n%s", logs)
	}

	var conn net.PacketConn
	if err := inNamespace(cli, func() (err error) {
		if conn, err = net.ListenPacket("udp4", phoneIP+":5060"); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(cliIf)
		if err != nil {
			return err
		}
		return ipv4.NewPacketConn(conn).SetMulticastInterface(ifi)
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sub := strings.Join([]string{
		"SUBSCRIBE sip:MAC%3a001565aabbcc@224.0.1.75 SIP/2.0",
		"Via: SIP/2.0/UDP " + phoneIP + ":5060;branch=z9hG4bKpnp1;rport",
		"From: <sip:MAC%3a001565aabbcc@224.0.1.75>;tag=yl1",
		"To: <sip:MAC%3a001565aabbcc@224.0.1.75>",
		"Call-ID: pnp-e2e@" + phoneIP,
		"CSeq: 1 SUBSCRIBE",
		"Contact: <sip:" + phoneIP + ":5060>",
		"Max-Forwards: 70",
		"User-Agent: Yealink SIP-T46U 108.86.0.20 00:15:65:aa:bb:cc",
		`Event: ua-profile;profile-type="device";vendor="Yealink";model="SIP-T46U";version="108.86.0.20"`,
		"Accept: application/url",
		"Expires: 0",
		"Content-Length: 0", "", ""}, "\r\n")
	if _, err := conn.WriteTo([]byte(sub), &net.UDPAddr{IP: net.ParseIP("224.0.1.75"), Port: 5060}); err != nil {
		t.Fatal(err)
	}
	read := func() (sip.Message, net.Addr) {
		t.Helper()
		buf := make([]byte, 8192)
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("phone: %v\ndaemon:\n%s", err, logs)
		}
		m, err := sip.NewParser().ParseSIP(buf[:n])
		if err != nil {
			t.Fatalf("phone: %v\n%s", err, buf[:n])
		}
		return m, from
	}
	if m, _ := read(); func() bool { r, ok := m.(*sip.Response); return !ok || r.StatusCode != 200 }() {
		t.Fatalf("SUBSCRIBE answer: %s\ndaemon:\n%s", m, logs)
	}
	m, from := read()
	n, ok := m.(*sip.Request)
	if !ok || n.Method != sip.NOTIFY {
		t.Fatalf("want the NOTIFY, got %s", m)
	}
	if want := "http://" + serverIP + ":8080/"; string(n.Body()) != want {
		t.Errorf("NOTIFY body %q, want the provisioning URL %q", n.Body(), want)
	}
	if ct := n.GetHeader("Content-Type"); ct == nil || ct.Value() != "application/url" {
		t.Errorf("NOTIFY Content-Type %v", ct)
	}
	if _, err := conn.WriteTo([]byte(sip.NewResponseFromRequest(n, 200, "OK", nil).String()), from); err != nil {
		t.Fatal(err)
	}
	dev := sh("ip", "netns", "exec", srv, "curl", "-s", "-u", "admin:netns-admin-pw",
		"http://127.0.0.1:18582/api/v1/devices/001565aabbcc")
	if !strings.Contains(dev, `"not_deployed"`) || !strings.Contains(strings.ToLower(dev), "yealink") {
		t.Fatalf("phone not enrolled by plug-and-play: %s\ndaemon:\n%s", dev, logs)
	}
	metrics := sh("ip", "netns", "exec", srv, "curl", "-s", "-u", "admin:netns-admin-pw", "http://127.0.0.1:18582/metrics")
	if !strings.Contains(metrics, `hotdesk_sip_pnp_subscribes_total{result="notified"} 1`) {
		t.Errorf("metrics lack the notified SUBSCRIBE:\n%s", grepLines(metrics, "hotdesk_sip_pnp"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
