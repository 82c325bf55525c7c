package daemon

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPlugAndPlayThroughNetns is a handset out of its box: the daemon runs
// in one network namespace as the LAN's DHCP server, Debian's dhclient with
// a Polycom vendor class in another gets an address and the boot server,
// and a TFTP fetch of the MAC-less 000000000000.cfg from that address is
// tied to the handset by its lease, which enrols it.
func TestPlugAndPlayThroughNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING plug-and-play netns test: it needs root to create network namespaces (make test runs as root)")
	}
	dhclient, err := exec.LookPath("dhclient")
	if err != nil {
		t.Fatal("dhclient not found: install isc-dhcp-client (make test does)")
	}
	bin := buildBinary(t)
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	srv, cli, srvIf, cliIf := "hdd-"+id+"-s", "hdd-"+id+"-c", "hdd"+id+"s", "hdd"+id+"c"
	prefix := fmt.Sprintf("10.78.%d", os.Getpid()%250+1)
	serverIP := prefix + ".1"
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
	sh("ip", "-n", cli, "link", "set", "dev", cliIf, "address", "00:04:f2:aa:bb:cc")
	sh("ip", "-n", srv, "addr", "add", serverIP+"/24", "dev", srvIf)
	for _, x := range [][2]string{{srv, srvIf}, {cli, cliIf}} {
		sh("ip", "-n", x[0], "link", "set", "lo", "up")
		sh("ip", "-n", x[0], "link", "set", x[1], "up")
	}

	dir := t.TempDir()
	conf := filepath.Join(dir, "hotdesk.yaml")
	if err := os.WriteFile(conf, []byte(`data_dir: `+filepath.Join(dir, "data")+`
admin: {listen: "127.0.0.1:18581", initial_password: "netns-admin-pw"}
provisioning: {http_listen: "`+serverIP+`:8080", tftp_listen: "`+serverIP+`:6969"}
sip: {listen: ["udp://`+serverIP+`:5060"], domain: lan.test}
dhcp:
  mode: server
  interface: `+srvIf+`
  subnet: `+prefix+`.0/24
  range: [`+prefix+`.100, `+prefix+`.120]
  router: `+serverIP+`
  lease_time: 1h
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
	go func() {
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
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon not ready in its namespace:\n%s", logs)
	}

	// Written aside and renamed: the test polls for the file and must
	// never read it half written.
	script := "#!/bin/sh\nenv > \"" + dir + "/.env.$reason\" && mv \"" + dir + "/.env.$reason\" \"" + dir + "/env.$reason\"\n"
	if err := os.WriteFile(filepath.Join(dir, "script.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dhclient.conf"), []byte(`option polycom-boot code 160 = text;
send vendor-class-identifier "Polycom-VVX400";
request subnet-mask, routers, tftp-server-name, polycom-boot;
`), 0o644); err != nil {
		t.Fatal(err)
	}
	client := exec.CommandContext(ctx, "ip", "netns", "exec", cli, dhclient, "-4", "-d", "-1",
		"-cf", filepath.Join(dir, "dhclient.conf"), "-lf", filepath.Join(dir, "leases"),
		"-pf", filepath.Join(dir, "pid"), "-sf", filepath.Join(dir, "script.sh"), cliIf)
	cout := &strings.Builder{}
	client.Stdout, client.Stderr = cout, cout
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Process.Kill(); _ = client.Wait() })
	env := map[string]string{}
	for deadline := time.Now().Add(25 * time.Second); ; {
		if b, err := os.ReadFile(filepath.Join(dir, "env.BOUND")); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(l, "="); ok {
					env[k] = strings.Trim(v, "'")
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dhclient never bound:\n%s\ndaemon:\n%s", cout, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if env["new_ip_address"] != prefix+".100" {
		t.Errorf("leased address %q, want %s.100", env["new_ip_address"], prefix)
	}
	if want := "http://" + serverIP + ":8080/"; env["new_tftp_server_name"] != want {
		t.Errorf("option 66 = %q, want the daemon's own provisioning URL %q", env["new_tftp_server_name"], want)
	}

	// Our dhclient script only records what it got; configure the address
	// as the phone would, then fetch the MAC-less master file over TFTP
	// from it: the lease names the handset.
	sh("ip", "-n", cli, "addr", "add", env["new_ip_address"]+"/24", "dev", cliIf)
	out := sh("ip", "netns", "exec", cli, "curl", "-s", "--max-time", "10", "tftp://"+serverIP+":6969/000000000000.cfg")
	if !strings.Contains(out, "0004f2aabbcc-hotdesk.cfg") {
		t.Fatalf("TFTP master file not tied to the handset's lease:\n%s\ndaemon:\n%s", out, logs)
	}
	dev := sh("ip", "netns", "exec", srv, "curl", "-s", "-u", "admin:netns-admin-pw", "http://127.0.0.1:18581/api/v1/devices/0004f2aabbcc")
	if !strings.Contains(dev, `"not_deployed"`) {
		t.Fatalf("handset not auto-enrolled as not deployed: %s", dev)
	}
}
