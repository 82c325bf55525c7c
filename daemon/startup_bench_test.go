package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/auth"
)

// seedLarge fills a data dir with n users (each with a number) and n devices.
func seedLarge(b *testing.B, cfg Config, n int) {
	b.Helper()
	ctx := context.Background()
	st, closeStore, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer closeStore()
	site := prov.Site{Name: "big", Domain: "big.test", Login: prov.LoginPolicy{Enabled: true}}
	if err := st.CreateSite(ctx, &site); err != nil {
		b.Fatal(err)
	}
	hash, _ := auth.HashPassword("pw-123456", auth.DefaultArgon2)
	err = st.WithTx(ctx, func(tx prov.Store) error {
		for i := range n {
			u := prov.User{Username: fmt.Sprintf("user%05d", i), FirstName: "U", LastName: strconv.Itoa(i),
				Email: fmt.Sprintf("user%05d@big.test", i), Kind: prov.KindPerson, Status: prov.StatusActive,
				SiteID: site.ID, PasswordHash: hash, SIPPassword: "sip" + strconv.Itoa(i)}
			if err := tx.CreateUser(ctx, &u); err != nil {
				return err
			}
			if err := tx.AssignNumber(ctx, strconv.Itoa(100000+i), u.ID); err != nil {
				return err
			}
			d := prov.Device{MAC: fmt.Sprintf("0004f3%06x", i), SiteID: site.ID, Kind: prov.DeviceManaged,
				Status: prov.DeviceDeployed, SIPUser: fmt.Sprintf("dev%06x", i), SIPPassword: "devpw"}
			if err := tx.CreateDevice(ctx, &d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStartupToReady measures Run from call to READY with 10,000 users
// and 10,000 devices in the store (goal < 1 s), and reports the daemon's
// heap and RSS at idle after start.
func BenchmarkStartupToReady(b *testing.B) {
	dir := b.TempDir()
	cfg, err := Parse([]byte("data_dir: " + dir + `
log: {level: error}
admin: {listen: "127.0.0.1:0", initial_password: "bench-admin"}
provisioning: {http_listen: "127.0.0.1:0", tftp_listen: "127.0.0.1:0"}
sip: {listen: ["udp://127.0.0.1:0", "tcp://127.0.0.1:0"], domain: big.test}
`))
	if err != nil {
		b.Fatal(err)
	}
	seedLarge(b, cfg, 10000)
	b.ResetTimer()
	var total time.Duration
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			done <- Run(ctx, cfg, Options{OnReady: func(Addrs) { close(ready) }}, slog.New(slog.DiscardHandler))
		}()
		select {
		case <-ready:
		case err := <-done:
			b.Fatal(err)
		}
		total += time.Since(start)
		runtime.GC()
		b.ReportMetric(float64(rssBytes())/(1<<20), "rss-MB")
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
}

// rssBytes reads the process's resident set from /proc.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
