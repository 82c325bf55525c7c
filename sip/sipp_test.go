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

// TestSippRegister drives the registrar with sipp as an outside peer:
// REGISTER → 401 (qop=auth) → REGISTER with digest → 200 for 20 users, and
// a wrong password must fail.
func TestSippRegister(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatal("sipp not found: install sip-tester (apt-get install -y sip-tester)")
	}
	e := startEnv(t, nil)
	dir := t.TempDir()
	var good, bad strings.Builder
	good.WriteString("SEQUENTIAL\n")
	bad.WriteString("SEQUENTIAL\n")
	for i := range 20 {
		u, p := fmt.Sprintf("u%d", 100000+i), fmt.Sprintf("pw%05dx", i)
		e.creds.add(Credential{Username: u, Password: p, Owner: Owner{OwnerUser, u}, AORs: []string{u}})
		fmt.Fprintf(&good, "%s;[authentication username=%s password=%s]\n", u, u, p)
	}
	bad.WriteString("u100000;[authentication username=u100000 password=wrong]\n")
	os.WriteFile(filepath.Join(dir, "good.csv"), []byte(good.String()), 0o600)
	os.WriteFile(filepath.Join(dir, "bad.csv"), []byte(bad.String()), 0o600)
	scen, _ := filepath.Abs("testdata/register_digest.xml")

	run := func(csv string, calls int) (string, error) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sipp, "-sf", scen, "-inf", filepath.Join(dir, csv), e.udp,
			"-i", "127.0.0.1", "-p", fmt.Sprint(port), "-r", "50", "-m", fmt.Sprint(calls),
			"-timeout", "20s", "-nostdin", "-nd", "-trace_err", "-error_file", filepath.Join(dir, csv+".err"))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("good.csv", 20); err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "good.csv.err"))
		t.Fatalf("sipp register: %v\n%s\n%s", err, tail(out, 2000), tail(string(errs), 2000))
	}
	if n := e.srv.BindingCount(); n != 20 {
		t.Fatalf("%d bindings after sipp, want 20", n)
	}
	if _, err := run("bad.csv", 1); err == nil {
		t.Fatal("sipp with a wrong password succeeded")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
