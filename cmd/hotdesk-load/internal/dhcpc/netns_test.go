//go:build linux

package dhcpc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"hotdesk/cmd/hotdesk-load/internal/dhcpc/dhcptest"
)

// TestNetnsBroadcast runs the real LAN path storm -dhcp uses: the client
// socket on 0.0.0.0:68 bound to a veth with SO_BINDTODEVICE, requests
// broadcast to 255.255.255.255:67, replies broadcast to :68 by a responder
// in a second namespace, many handsets demultiplexed by xid. It then checks
// the bench script's address trick: a `local` route for the pool on lo in
// the client namespace lets a handset bind its leased address and reach the
// server, which learns it by ARP like a real phone's.
func TestNetnsBroadcast(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING netns DHCP test: it needs root to create network namespaces and a veth pair (CI runs it as root)")
	}
	srvNS, cliNS, srvIf, cliIf := vethPair(t)
	r := &dhcptest.Responder{ServerID: netip.MustParseAddr("10.77.0.1"), Pool: netip.MustParseAddr("10.77.128.10"),
		Options: map[uint8]string{66: "http://10.77.0.1:18080/"}, Dest: &net.UDPAddr{IP: net.IPv4bcast, Port: 68}}
	var srv net.PacketConn
	inNetns(t, srvNS, func() (err error) { srv, err = ListenInterface(srvIf, "0.0.0.0:67"); return err })
	r.Serve(t, srv)
	var conn net.PacketConn
	inNetns(t, cliNS, func() (err error) { conn, err = ListenInterface(cliIf, "0.0.0.0:68"); return err })
	c := New(Config{Conn: conn, Server: &net.UDPAddr{IP: net.IPv4bcast, Port: 67}, VendorClass: "Polycom-VVX400",
		RTO: 500 * time.Millisecond, Tries: 4})
	defer c.Close()

	const n = 50
	leases := make([]Lease, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if leases[i], err = c.Acquire(context.Background(), net.HardwareAddr{0, 4, 0xf3, 0, 0, byte(i)}); err != nil {
				t.Errorf("handset %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for _, l := range leases {
		if seen[l.Addr] || l.BootServer != "http://10.77.0.1:18080/" {
			t.Errorf("lease %+v (duplicate %v)", l, seen[l.Addr])
		}
		seen[l.Addr] = true
	}
	t.Logf("stats %+v", c.Stats())
	if t.Failed() {
		return
	}
	checkLocalRoute(t, srvNS, cliNS, leases[n-1].Addr)
}

// checkLocalRoute binds a leased address in the client namespace thanks to
// a `local` route and opens a TCP connection to the server namespace.
func checkLocalRoute(t *testing.T, srvNS, cliNS string, leased netip.Addr) {
	sh(t, "ip", "-n", cliNS, "route", "add", "local", "10.77.128.0/17", "dev", "lo")
	var ln net.Listener
	inNetns(t, srvNS, func() (err error) { ln, err = net.Listen("tcp4", "10.77.0.1:0"); return err })
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			peer <- err.Error()
			return
		}
		defer c.Close()
		peer <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		_, _ = io.WriteString(c, "ok")
	}()
	inNetns(t, cliNS, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: leased.AsSlice()}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return fmt.Errorf("dial from leased %v: %w", leased, err)
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "ok" {
			return fmt.Errorf("read %q: %v", b, err)
		}
		return nil
	})
	if got := <-peer; got != leased.String() {
		t.Errorf("server saw %s, want %v", got, leased)
	}
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// vethPair creates a server and a client namespace joined by a veth
// (10.77.0.1/16 and 10.77.0.2/16), deleted when the test ends.
func vethPair(t *testing.T) (srvNS, cliNS, srvIf, cliIf string) {
	id := fmt.Sprintf("%d", os.Getpid())
	srvNS, cliNS, srvIf, cliIf = "hdlt-"+id+"-s", "hdlt-"+id+"-c", "hdlt"+id+"s", "hdlt"+id+"c"
	for _, ns := range []string{srvNS, cliNS} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	}
	sh(t, "ip", "link", "add", srvIf, "type", "veth", "peer", "name", cliIf)
	sh(t, "ip", "link", "set", srvIf, "netns", srvNS)
	sh(t, "ip", "link", "set", cliIf, "netns", cliNS)
	sh(t, "ip", "-n", srvNS, "addr", "add", "10.77.0.1/16", "dev", srvIf)
	sh(t, "ip", "-n", cliNS, "addr", "add", "10.77.0.2/16", "dev", cliIf)
	for _, x := range [][2]string{{srvNS, srvIf}, {cliNS, cliIf}} {
		sh(t, "ip", "-n", x[0], "link", "set", "lo", "up")
		sh(t, "ip", "-n", x[0], "link", "set", x[1], "up")
	}
	return srvNS, cliNS, srvIf, cliIf
}

// inNetns runs f on an OS thread switched into namespace ns; sockets f
// opens stay in ns. A thread that cannot switch back is not reused.
func inNetns(t *testing.T, ns string, f func() error) {
	t.Helper()
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
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in %s: %v", ns, err)
	}
}
