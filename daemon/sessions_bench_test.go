package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"testing"
	"time"

	"hotdesk/prov"
)

// BenchmarkLoginsAndLogout logs 10,000 users in (admin door: no argon2id,
// which a password door adds at ~35 ms per login and core), then measures
// logout → credentials revoked, bindings removed and check-sync sent, with
// 10,000 sessions active (goal p99 ≤ 20 ms).
func BenchmarkLoginsAndLogout(b *testing.B) {
	dir := b.TempDir()
	cfg, err := Parse([]byte("data_dir: " + dir + `
log: {level: error}
admin: {listen: "127.0.0.1:0", initial_password: "bench-admin"}
provisioning: {http_listen: "127.0.0.1:0", tftp_listen: ""}
sip: {listen: ["udp://127.0.0.1:0"], domain: big.test}
`))
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	seedLarge(b, cfg, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var a *app
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{onBuilt: func(x *app) { a = x }, OnReady: func(Addrs) { close(ready) }},
			slog.New(slog.DiscardHandler))
	}()
	<-ready
	// One UA stands in for the 10,000 handsets: it registers every device
	// account and answers the check-sync NOTIFYs that logouts send.
	bank := newHandset(b, a.addrs.SIPUDP[0], "big.test")
	for i := range n {
		u := fmt.Sprintf("dev%06x", i)
		if code := bank.register(b, u, u, "devpw", 3600); code != 200 {
			b.Fatalf("REGISTER %s = %d", u, code)
		}
	}
	for len(bank.notifies) > 0 {
		<-bank.notifies
	}
	b.ResetTimer()
	for b.Loop() {
		ids := make([]string, 0, n)
		start := time.Now()
		for i := range n {
			s, err := a.svc.sessions.Login(ctx, prov.LoginRequest{MAC: fmt.Sprintf("0004f3%06x", i),
				Username: fmt.Sprintf("user%05d", i), Door: prov.DoorAPI, Verified: true, Privileged: true})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, s.ID)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "logins/s")
		// Every login sent its check-sync.
		drain(b, bank.notifies, n)
		for len(bank.arrivals) > 0 {
			<-bank.arrivals
		}
		lat := make([]time.Duration, 0, n)
		sent := make(map[string]time.Time, n)
		for i, id := range ids {
			t0 := time.Now()
			sent[fmt.Sprintf("dev%06x", i)] = t0
			if err := a.svc.sessions.End(ctx, id, prov.EndLogout, prov.Actor{}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		// Every logout's NOTIFY reached the phone: logout → NOTIFY on the wire.
		drain(b, bank.notifies, n)
		wire := make([]time.Duration, 0, n)
		for len(bank.arrivals) > 0 {
			a := <-bank.arrivals
			if t0, ok := sent[a.user]; ok {
				wire = append(wire, a.at.Sub(t0))
			}
		}
		if len(wire) != n {
			b.Fatalf("%d of %d logout NOTIFYs matched a logout", len(wire), n)
		}
		report := func(ds []time.Duration, name string) {
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, name+"-p50-ms")
			b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, name+"-p99-ms")
		}
		report(lat, "logout")
		report(wire, "logout-notify-wire")
	}
	cancel()
	<-done
}

// drain waits for n NOTIFYs, at most 30 s.
func drain(b *testing.B, ch <-chan string, n int) {
	deadline := time.After(30 * time.Second)
	for got := 0; got < n; got++ {
		select {
		case <-ch:
		case <-deadline:
			b.Fatalf("%d of %d check-sync NOTIFYs arrived", got, n)
		}
	}
}
