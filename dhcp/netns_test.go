package dhcp

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sys/unix"
)

// netnsSeq makes namespace and veth names unique within the test binary.
var netnsSeq atomic.Int32

// vethPair is a server namespace and a client namespace joined by a veth.
type vethPair struct {
	srvNS, cliNS string
	srvIf, cliIf string
	prefix       string // "10.77.N"
	serverIP     string
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING netns integration test: it needs root to create network namespaces and veth pairs " +
			"(run `sudo go test ./dhcp/...` or `make test` as root)")
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newVethPair creates two namespaces and a veth between them; the client end
// gets cliAddr when it is not empty. Everything is deleted in t.Cleanup.
func newVethPair(t *testing.T, cliAddr bool) *vethPair {
	t.Helper()
	n := int(netnsSeq.Add(1))
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, n)
	p := &vethPair{srvNS: "hdt-" + id + "-s", cliNS: "hdt-" + id + "-c", srvIf: "hdt" + id + "s", cliIf: "hdt" + id + "c",
		prefix: fmt.Sprintf("10.77.%d", (os.Getpid()+n)%250+1)}
	p.serverIP = p.prefix + ".1"
	for _, ns := range []string{p.srvNS, p.cliNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	}
	run(t, "ip", "link", "add", p.srvIf, "type", "veth", "peer", "name", p.cliIf)
	run(t, "ip", "link", "set", p.srvIf, "netns", p.srvNS)
	run(t, "ip", "link", "set", p.cliIf, "netns", p.cliNS)
	run(t, "ip", "-n", p.srvNS, "addr", "add", p.serverIP+"/24", "dev", p.srvIf)
	if cliAddr {
		run(t, "ip", "-n", p.cliNS, "addr", "add", p.prefix+".50/24", "dev", p.cliIf)
	}
	for _, x := range [][2]string{{p.srvNS, p.srvIf}, {p.cliNS, p.cliIf}} {
		run(t, "ip", "-n", x[0], "link", "set", "lo", "up")
		run(t, "ip", "-n", x[0], "link", "set", x[1], "up")
	}
	return p
}

// inNetns runs f on an OS thread switched into the named namespace; sockets
// opened by f stay in that namespace after the thread switches back.
func inNetns(ns string, f func() error) error {
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

// startServer binds and serves cfg inside the server namespace.
func startServer(t *testing.T, p *vethPair, cfg Config, deps Deps) {
	t.Helper()
	cfg.Interface, cfg.ServerID = p.srvIf, p.serverIP
	var conn net.PacketConn
	if err := inNetns(p.srvNS, func() (err error) { conn, err = Listen(cfg); return err }); err != nil {
		t.Fatalf("listen in %s: %v", p.srvNS, err)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		conn.Close()
	})
}

const polycomBoot = "http://10.77.0.1:8080/polycom/"

func TestNetnsDhclientPolycom(t *testing.T) {
	requireRoot(t)
	dhclient, err := exec.LookPath("dhclient")
	if err != nil {
		t.Fatalf("dhclient not found (apt-get install isc-dhcp-client): %v", err)
	}
	p := newVethPair(t, false)
	cfg := DefaultConfig()
	cfg.Mode = ModeServer
	cfg.Subnet = p.prefix + ".0/24"
	cfg.Range = []string{p.prefix + ".100", p.prefix + ".110"}
	cfg.Router = p.serverIP
	cfg.VendorClasses = []VendorClass{{Match: "Polycom-*", Options: map[int]string{160: polycomBoot}}}
	store, obs := NewMemoryStore(), &recObserver{}
	boot := "http://" + p.serverIP + ":8080/prov/"
	startServer(t, p, cfg, Deps{Leases: store, Observer: obs, BootServer: boot})

	dir := t.TempDir()
	conf := `option polycom-boot code 160 = text;
send vendor-class-identifier "Polycom-VVX400";
request subnet-mask, routers, tftp-server-name, polycom-boot;
`
	// Written aside and renamed: the test polls for the file and must
	// never read it half written.
	script := "#!/bin/sh\nenv > \"" + dir + "/.env.$reason\" && mv \"" + dir + "/.env.$reason\" \"" + dir + "/env.$reason\"\n"
	must(t, os.WriteFile(filepath.Join(dir, "dhclient.conf"), []byte(conf), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "script.sh"), []byte(script), 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", p.cliNS, dhclient, "-4", "-d", "-1", "-v",
		"-cf", filepath.Join(dir, "dhclient.conf"), "-lf", filepath.Join(dir, "leases"),
		"-pf", filepath.Join(dir, "pid"), "-sf", filepath.Join(dir, "script.sh"), p.cliIf)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	must(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	env := waitEnv(t, filepath.Join(dir, "env.BOUND"), 25*time.Second, out)
	for k, want := range map[string]string{
		"new_ip_address":       p.prefix + ".100",
		"new_tftp_server_name": boot,
		"new_polycom_boot":     polycomBoot,
		"new_routers":          p.serverIP,
		"new_subnet_mask":      "255.255.255.0",
	} {
		if env[k] != want {
			t.Errorf("dhclient got %s=%q, want %q", k, env[k], want)
		}
	}
	leases, _ := store.LoadLeases(context.Background())
	if len(leases) != 1 || leases[0].IP.String() != p.prefix+".100" || leases[0].VendorClass != "Polycom-VVX400" {
		t.Errorf("stored leases %+v", leases)
	}
	seen := obs.all()
	if len(seen) < 2 || seen[0].MsgType != MsgDiscover || seen[0].VendorClass != "Polycom-VVX400" {
		t.Errorf("observer saw %+v", seen)
	}
}

// waitEnv waits for the dhclient script's env dump and parses it.
func waitEnv(t *testing.T, path string, d time.Duration, log fmt.Stringer) map[string]string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := os.Open(path)
		if err == nil {
			defer f.Close()
			env := map[string]string{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if k, v, ok := strings.Cut(sc.Text(), "="); ok {
					env[k] = strings.Trim(v, "'")
				}
			}
			return env
		}
		if time.Now().After(deadline) {
			t.Fatalf("dhclient never reached BOUND; its output:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNetnsInformMode(t *testing.T) {
	requireRoot(t)
	p := newVethPair(t, true)
	cfg := DefaultConfig()
	cfg.Mode = ModeInform
	cfg.VendorClasses = []VendorClass{{Match: "Polycom-*", Options: map[int]string{160: polycomBoot}}}
	obs := &recObserver{}
	boot := "http://" + p.serverIP + ":8080/prov/"
	startServer(t, p, cfg, Deps{Observer: obs, BootServer: boot})

	var conn net.PacketConn
	must(t, inNetns(p.cliNS, func() (err error) {
		conn, err = server4.NewIPv4UDPConn(p.cliIf, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ClientPort})
		return err
	}))
	defer conn.Close()
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	hw := mac(0x42)

	// A DISCOVER gets no answer in inform mode.
	_, err := conn.WriteTo(discoverMsg(t, hw, vendor("Polycom-VVX400")).ToBytes(), bcast)
	must(t, err)
	if m := readReply(conn, 700*time.Millisecond); m != nil {
		t.Fatalf("inform mode answered a DISCOVER with %s", m.MessageType())
	}
	inf := msgOf(t, dhcpv4.MessageTypeInform, hw, vendor("Polycom-VVX400"), prl(1, 66, 160),
		dhcpv4.WithClientIP(net.ParseIP(p.prefix+".50")))
	_, err = conn.WriteTo(inf.ToBytes(), bcast)
	must(t, err)
	ack := readReply(conn, 5*time.Second)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.TransactionID != inf.TransactionID {
		t.Fatalf("no INFORM ACK: %v", ack)
	}
	if optStr(ack, 66) != boot || optStr(ack, 160) != polycomBoot {
		t.Errorf("options 66=%q 160=%q", optStr(ack, 66), optStr(ack, 160))
	}
	if !ack.YourIPAddr.IsUnspecified() || ack.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		t.Errorf("INFORM ACK offers an address")
	}
	seen := obs.all()
	if len(seen) != 2 || seen[1].MsgType != MsgInform || seen[1].IP.String() != p.prefix+".50" {
		t.Errorf("observer saw %+v", seen)
	}
}

// readReply waits up to d for one BOOTREPLY.
func readReply(conn net.PacketConn, d time.Duration) *dhcpv4.DHCPv4 {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return nil
		}
		if m, err := dhcpv4.FromBytes(buf[:n]); err == nil && m.OpCode == dhcpv4.OpcodeBootReply {
			return m
		}
	}
}
