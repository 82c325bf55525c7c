package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hotdesk/daemon"
)

// TestCommandsAgainstRunningDaemon runs check-config, status, user import
// and backup the way an admin types them, against a daemon on loopback.
func TestCommandsAgainstRunningDaemon(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "hotdesk.yaml")
	if err := os.WriteFile(conf, []byte(`
data_dir: `+filepath.Join(dir, "data")+`
admin: {listen: "127.0.0.1:0", initial_password: "cli-admin-pw"}
provisioning: {http_listen: "127.0.0.1:0", tftp_listen: ""}
sip: {listen: ["udp://127.0.0.1:0"], domain: cli.test}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := daemon.LoadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan daemon.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, cfg, daemon.Options{OnReady: func(a daemon.Addrs) { ready <- a }}, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	var addrs daemon.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	admin := "http://" + addrs.Admin
	runCmd := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		return code, out.String() + errb.String()
	}

	if code, out := runCmd("check-config", "-c", conf); code != 0 || !strings.Contains(out, "OK") || strings.Contains(out, "cli-admin-pw") {
		t.Fatalf("check-config = %d\n%s", code, out)
	}
	if code, out := runCmd("check-config", "-c", filepath.Join(dir, "missing.yaml")); code == 0 {
		t.Fatalf("check-config of a missing file succeeded:\n%s", out)
	}
	t.Setenv("HOTDESK_PASSWORD", "wrong-password")
	if code, out := runCmd("status", "--admin", admin); code == 0 || !strings.Contains(out, "401") {
		t.Fatalf("status with a wrong password = %d\n%s", code, out)
	}
	t.Setenv("HOTDESK_PASSWORD", "cli-admin-pw")
	code, out := runCmd("status", "--admin", admin)
	if code != 0 || !strings.Contains(out, addrs.Admin) || !strings.Contains(out, addrs.HTTP) {
		t.Fatalf("status = %d\n%s", code, out)
	}

	csv := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(csv, []byte("\ufeffusername,first_name,last_name,email,numbers\n"+
		"dave,Dave,Doe,dave@cli.test,2001\n"+
		"erin,Erin,,erin@cli.test,2002\n"+
		"\"frank\",\"Frank, Jr.\",Fox,frank@cli.test,2003\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = runCmd("user", "import", "--admin", admin, "--dry-run", csv)
	if code == 0 || !strings.Contains(out, "would create 2") || !strings.Contains(out, "last_name") {
		t.Fatalf("dry run = %d\n%s", code, out)
	}
	code, out = runCmd("user", "import", "--admin", admin, csv)
	if code == 0 || !strings.Contains(out, "created 2, refused 1") {
		t.Fatalf("import = %d\n%s", code, out)
	}

	backup := filepath.Join(dir, "backup.db")
	if code, out := runCmd("backup", "-c", conf, backup); code != 0 {
		t.Fatalf("backup while serving = %d\n%s", code, out)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v", err)
	}
	if code, out := runCmd("restore", "-c", conf, backup); code == 0 {
		t.Fatalf("restore over a running daemon succeeded:\n%s", out)
	}
	if code, out := runCmd("version"); code != 0 || !strings.Contains(out, "hotdeskd") {
		t.Fatalf("version = %d %s", code, out)
	}
	if code, _ := runCmd("no-such-command"); code != 2 {
		t.Fatalf("unknown command exit = %d, want 2", code)
	}
}

// TestCheckConfigPrintsSRVZone: with cluster.srv_domain set, check-config
// prints the NAPTR, SRV and (for nodes given by IP) A records to publish.
func TestCheckConfigPrintsSRVZone(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "hotdesk.yaml")
	if err := os.WriteFile(conf, []byte(`
data_dir: `+filepath.Join(dir, "data")+`
sip: {listen: ["udp://127.0.0.1:5062", "tcp://127.0.0.1:5062"], domain: sip.example}
cluster: {nodes: ["10.0.0.11", "sipb.example:5070"], srv_domain: sip.example}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-config", "-c", conf}, &out, &errb); code != 0 {
		t.Fatalf("check-config = %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		`sip.example. IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.sip.example.`,
		`sip.example. IN NAPTR 20 50 "s" "SIP+D2T" "" _sip._tcp.sip.example.`,
		"_sip._udp.sip.example. IN SRV 10 10 5062 node1.sip.example.",
		"_sip._tcp.sip.example. IN SRV 10 10 5062 node1.sip.example.",
		"_sip._udp.sip.example. IN SRV 10 10 5070 sipb.example.",
		"node1.sip.example. IN A 10.0.0.11",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("check-config output lacks %q:\n%s", want, out.String())
		}
	}
}
