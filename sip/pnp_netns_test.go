package sip

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

var pnpNetnsSeq atomic.Int32

// pnpNetns is a server and a phone namespace joined by a veth, each end
// with an address in 10.78.N.0/24.
type pnpNetns struct {
	srvNS, cliNS, srvIf, cliIf, srvIP, cliIP string
}

func pnpSh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newPnPNetns(t *testing.T) *pnpNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING netns plug-and-play test: it needs root to create network namespaces (run `make test` as root)")
	}
	n := int(pnpNetnsSeq.Add(1))
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, n)
	prefix := fmt.Sprintf("10.78.%d", (os.Getpid()+n)%250+1)
	p := &pnpNetns{srvNS: "hdp-" + id + "-s", cliNS: "hdp-" + id + "-c", srvIf: "hdp" + id + "s", cliIf: "hdp" + id + "c",
		srvIP: prefix + ".1", cliIP: prefix + ".50"}
	for _, ns := range []string{p.srvNS, p.cliNS} {
		pnpSh(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	}
	pnpSh(t, "link", "add", p.srvIf, "type", "veth", "peer", "name", p.cliIf)
	pnpSh(t, "link", "set", p.srvIf, "netns", p.srvNS)
	pnpSh(t, "link", "set", p.cliIf, "netns", p.cliNS)
	pnpSh(t, "-n", p.srvNS, "addr", "add", p.srvIP+"/24", "dev", p.srvIf)
	pnpSh(t, "-n", p.cliNS, "addr", "add", p.cliIP+"/24", "dev", p.cliIf)
	for _, x := range [][2]string{{p.srvNS, p.srvIf}, {p.cliNS, p.cliIf}} {
		pnpSh(t, "-n", x[0], "link", "set", "lo", "up")
		pnpSh(t, "-n", x[0], "link", "set", x[1], "up")
	}
	return p
}

// pnpInNetns runs f on an OS thread switched into the namespace; sockets f
// opens stay there.
func pnpInNetns(ns string, f func() error) error {
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

// TestPnPMulticastNetns: a phone in its own namespace multicasts a real
// SUBSCRIBE to 224.0.1.75:5060 over a veth; the responder (on the interface
// named in sip.pnp, beside the registrar bound to 0.0.0.0:5060 in the same
// namespace) answers 200 and the NOTIFY with the URL reaches the phone;
// the registrar does not answer the group's traffic too.
func TestPnPMulticastNetns(t *testing.T) {
	p := newPnPNetns(t)
	cfg := DefaultConfig()
	cfg.Domain = "hotdesk.test"
	cfg.Listen = []string{"udp://0.0.0.0:5060"}
	cfg.UDPWorkers = 1
	cfg.PnP = PnPConfig{Enabled: true, Interface: p.srvIf}
	var regLs Listeners
	var pnpLs PnPListeners
	if err := pnpInNetns(p.srvNS, func() (err error) {
		if regLs, err = Listen(cfg); err != nil {
			return err
		}
		pnpLs, err = ListenPnP(cfg.PnP)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Deps{Credentials: newMemCreds()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, regLs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("registrar did not stop")
		}
	})
	e := startPnP(t, pnpLs)

	var conn net.PacketConn
	if err := pnpInNetns(p.cliNS, func() (err error) {
		if conn, err = net.ListenPacket("udp4", p.cliIP+":5060"); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(p.cliIf)
		if err != nil {
			return err
		}
		return ipv4.NewPacketConn(conn).SetMulticastInterface(ifi)
	}); err != nil {
		t.Fatal(err)
	}
	phone := newPnPPhone(t, conn)
	group := &net.UDPAddr{IP: net.ParseIP(PnPGroup), Port: PnPPort}
	phone.subscribe(group, "yealink", "001565aabbcc", "ns1", 1)
	res := phone.response()
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE to the group: %s", res)
	}
	n, from := phone.answerNotify(200)
	if host, _, _ := net.SplitHostPort(from.String()); host != p.srvIP {
		t.Errorf("NOTIFY from %s, want the interface address %s", from, p.srvIP)
	}
	checkNotify(t, n, res, "http://10.0.0.1:8080/prov/yealink/")
	// The phone's retry is answered alike, with no second NOTIFY: the next
	// message is the answer to it (with IP_MULTICAST_ALL left on, the
	// registrar's 405 to the group's SUBSCRIBE arrives here).
	phone.subscribe(group, "yealink", "001565aabbcc", "ns1", 2)
	if res := phone.response(); res.StatusCode != 200 {
		t.Fatalf("repeated SUBSCRIBE: %s", res.Short())
	}
	waitFor(t, "NOTIFY answered", 10*time.Second, func() bool { return e.count("notifies", "ok") == 1 })
	if d := e.prov.calls(); len(d) != 1 || d[0].Source.String() != p.cliIP {
		t.Errorf("enrolments %+v", d)
	}
}
