package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// procCPU is the CPU time (user+system) process pid has used.
func procCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)        // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64)        // stime, field 15
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// quiesce waits (up to 30 s) for the daemon at pid to go idle: the
// registrar hands REGISTER events to prov on a goroutine of its own, and a
// login's NOTIFYs and relays follow it, so without this one figure's store
// work lands in the next (the REGISTER rounds' tail was most of the first
// "cold" PostgreSQL logins). Idle: under one clock tick in 300 ms.
func quiesce(b testing.TB, pid int) {
	b.Helper()
	last := procCPU(b, pid)
	for range 100 {
		time.Sleep(300 * time.Millisecond)
		cur := procCPU(b, pid)
		if cur-last <= 10*time.Millisecond {
			return
		}
		last = cur
	}
	b.Fatal("the daemon never went idle")
}

// BenchmarkStoreDriverCPU measures the daemon process's CPU per REGISTER
// (challenge and authenticated request) and per login and logout (admin
// API with a token, so no password hash), on SQLite and on PostgreSQL side
// by side (the ≤ 1.5× goal). Run with -benchtime=1x; the
// workload is fixed. cpu-µs/login is the mean of three rounds of 100
// logins after a first (cold-login: the first use of each statement on
// each pooled connection, reported apart); every round is logged out after.
// Each figure waits for the daemon to go idle before and after (quiesce),
// so it holds the asynchronous work its requests caused and nothing else.
func BenchmarkStoreDriverCPU(b *testing.B) {
	bin := buildBinary(b)
	for _, driver := range []string{store.DriverSQLite, store.DriverPostgres} {
		b.Run(driver, func(b *testing.B) {
			for b.Loop() {
				benchDriverCPU(b, bin, driver)
			}
		})
	}
}

func benchDriverCPU(b *testing.B, bin, driver string) {
	const phones, rounds, users, warmRounds = 200, 10, 100, 3
	ctx := context.Background()
	dir := b.TempDir()
	scfg := store.Config{Driver: store.DriverSQLite}
	storeYAML := `store: {driver: sqlite}`
	dataDir := filepath.Join(dir, "data")
	if driver == store.DriverPostgres {
		dsn := postgresDB(b)
		scfg = store.Config{Driver: store.DriverPostgres, DSN: dsn}
		storeYAML = `store: {driver: postgres, dsn: "` + dsn + `"}`
	}
	st, err := store.Open(ctx, scfg, dataDir, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := Default()
	cfg.SIP.Domain = "test.lan"
	if err := seedDemo(ctx, st, cfg, slog.New(slog.DiscardHandler)); err != nil {
		b.Fatal(err)
	}
	demo, _ := st.GetDevice(ctx, phoneA)
	dir2 := prov.NewDirectory(st, nil, time.Now)
	for i := range phones {
		d := prov.Device{MAC: fmt.Sprintf("0004f3%06d", i), Vendor: "polycom", Model: "VVX400", SiteID: demo.SiteID,
			Kind: prov.DeviceManaged, Status: prov.DeviceDeployed, SIPUser: fmt.Sprintf("hs%04d", i),
			SIPPassword: fmt.Sprintf("pw-%04d-secret", i)}
		if err := st.CreateDevice(ctx, &d); err != nil {
			b.Fatal(err)
		}
		if i < users {
			if _, err := dir2.CreateUser(ctx, prov.UserInput{Username: fmt.Sprintf("cpu%03d", i), FirstName: "C",
				LastName: "U", Email: fmt.Sprintf("cpu%03d@test.lan", i), Language: "en", SiteID: demo.SiteID,
				Password: "cpu-user-password", Numbers: []string{fmt.Sprintf("3%03d", i)}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	st.Close()
	// The node's data dir is the one seeded (SQLite's file lives there).
	n := startProc(b, bin, dir, storeYAML, "n1")
	pid := n.cmd.Process.Pid

	hs := make([]*clusterHandset, phones)
	for i := range hs {
		hs[i] = &clusterHandset{handset: newHandset(b, n.addrs.SIPUDP[0], "test.lan"), servers: n.addrs.SIPUDP,
			lines: [][3]string{{fmt.Sprintf("hs%04d", i), fmt.Sprintf("hs%04d", i), fmt.Sprintf("pw-%04d-secret", i)}}}
	}
	register := func() {
		if errs := parallel(hs, 32, func(h *clusterHandset) error { return h.register(300) }); len(errs) > 0 {
			b.Fatal(errs[0])
		}
	}
	register() // first registrations: enrolment work, not measured
	quiesce(b, pid)
	c0 := procCPU(b, pid)
	for range rounds {
		register()
	}
	quiesce(b, pid)
	regCPU := (procCPU(b, pid) - c0) / (phones * rounds)

	_, tok := n.api(b, "POST", "/tokens", `{"name":"bench"}`)
	token, _ := tok["token"].(string)
	if token == "" {
		b.Fatalf("no API token: %v", tok)
	}
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+n.addrs.Admin+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		var v struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(res.Body).Decode(&v)
		return res.StatusCode, v.ID
	}
	// logins logs user i in on phone offset+i; the cold round (offset 0)
	// is also the first use of each statement on each pooled connection.
	logins := func(offset int) (time.Duration, []string) {
		quiesce(b, pid)
		c0 := procCPU(b, pid)
		var ids []string
		for i := range users {
			code, id := call("POST", "/sessions", fmt.Sprintf(`{"device":"0004f3%06d","user":"cpu%03d"}`, offset+i, i))
			if code != 201 {
				b.Fatalf("login = %d", code)
			}
			ids = append(ids, id)
		}
		quiesce(b, pid)
		return (procCPU(b, pid) - c0) / users, ids
	}
	logout := func(ids []string) {
		for _, id := range ids {
			if code, _ := call("DELETE", "/sessions/"+id, ""); code != 200 {
				b.Fatalf("logout = %d", code)
			}
		}
	}
	cold, ids := logins(0)
	logout(ids)
	var warm time.Duration
	for r := range warmRounds {
		cpu, ids := logins((r%2 + 1) * users % phones)
		warm += cpu / warmRounds
		logout(ids)
	}
	b.ReportMetric(float64(regCPU.Microseconds()), "cpu-µs/register")
	b.ReportMetric(float64(cold.Microseconds()), "cpu-µs/cold-login")
	b.ReportMetric(float64(warm.Microseconds()), "cpu-µs/login")
}
