package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/stats"
)

// sippPassword takes the password out of a sipp CSV field
// "[authentication username=u password=p]"; plain fields pass through.
func sippPassword(f string) string {
	if !strings.HasPrefix(f, "[authentication") {
		return f
	}
	_, after, ok := strings.Cut(f, "password=")
	if !ok {
		return ""
	}
	end := strings.IndexAny(after, " ]")
	if end < 0 {
		return after
	}
	return after[:end]
}

// userSource names users: from a CSV (user[,password]) or prefix+index.
type userSource struct {
	csvPath string
	list    string
	prefix  string
	start   int
	passFmt string
	rows    [][]string
}

// load reads the CSV or list; call it once after flag parsing.
func (u *userSource) load() error {
	u.rows = nil
	return u.loadRows()
}

func (u *userSource) loadRows() error {
	if u.list != "" {
		for _, n := range strings.Split(u.list, ",") {
			if n = strings.TrimSpace(n); n != "" {
				name, pw, _ := strings.Cut(n, ":")
				u.rows = append(u.rows, []string{name, pw})
			}
		}
		return nil
	}
	if u.csvPath == "" {
		return nil
	}
	f, err := os.Open(u.csvPath)
	if err != nil {
		return fmt.Errorf("users csv: %w", err)
	}
	defer f.Close()
	all, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return fmt.Errorf("users csv: %w", err)
	}
	return u.parseCSV(string(all))
}

// parseCSV accepts "user,password" lines and sipp injection files
// (SEQUENTIAL header, ';' separated, "[authentication …]" fields).
func (u *userSource) parseCSV(text string) error {
	sep := ','
	if strings.Count(text, ";") > strings.Count(text, ",") {
		sep = ';'
	}
	r := csv.NewReader(strings.NewReader(text))
	r.Comma, r.FieldsPerRecord, r.Comment, r.LazyQuotes = sep, -1, '#', true
	recs, err := r.ReadAll()
	if err != nil {
		return fmt.Errorf("users csv: %w", err)
	}
	for _, rec := range recs {
		if len(rec) == 0 || rec[0] == "" || rec[0] == "SEQUENTIAL" || rec[0] == "RANDOM" || rec[0] == "user" {
			continue
		}
		u.rows = append(u.rows, rec)
	}
	if len(u.rows) == 0 {
		return errors.New("users csv: no users")
	}
	return nil
}

// user returns the k-th user (cycling through a CSV) and its password.
func (u *userSource) user(k int) (name, password string) {
	if len(u.rows) > 0 {
		r := u.rows[k%len(u.rows)]
		name = strings.TrimSpace(r[0])
		if len(r) > 1 {
			password = sippPassword(strings.TrimSpace(r[1]))
		}
		return name, password
	}
	idx := u.start + k
	name = u.prefix + strconv.Itoa(idx)
	if u.passFmt != "" {
		password = strings.ReplaceAll(u.passFmt, "{n}", strconv.Itoa(idx))
		password = strings.ReplaceAll(password, "{user}", name)
	}
	return name, password
}

// srcAddrs hands out source addresses from a CIDR, one per simulated
// phone, so per-source rate limits and lockouts see distinct phones.
type srcAddrs struct {
	prefix netip.Prefix
	ok     bool
}

// newSrcAddrs parses spec: "" or "none" (kernel's choice), "auto" (a
// 127.77.0.0/16 range when target is on loopback), or a CIDR.
func newSrcAddrs(spec, target string) (srcAddrs, error) {
	switch spec {
	case "", "none":
		return srcAddrs{}, nil
	case "auto":
		host := target
		if u, err := url.Parse(target); err == nil && u.Host != "" {
			host = u.Hostname()
		} else if h, _, err := net.SplitHostPort(target); err == nil {
			host = h
		}
		ip, err := netip.ParseAddr(host)
		if host == "localhost" || (err == nil && ip.Is4() && ip.IsLoopback()) {
			return srcAddrs{prefix: netip.MustParsePrefix("127.77.0.0/16"), ok: true}, nil
		}
		return srcAddrs{}, nil
	}
	p, err := netip.ParsePrefix(spec)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return srcAddrs{}, usageErr("-src-cidr %q: want an IPv4 CIDR of at least /30, auto or none", spec)
	}
	return srcAddrs{prefix: p.Masked(), ok: true}, nil
}

// addr returns the i-th host address ("" when not spreading).
func (s srcAddrs) addr(i int) string {
	if !s.ok {
		return ""
	}
	size := uint32(1) << (32 - s.prefix.Bits())
	n := uint32(i)%(size-2) + 1
	b := s.prefix.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// pacer starts work at most rate per second (0 = unlimited).
type pacer struct {
	start    time.Time
	interval time.Duration
}

func newPacer(rate float64) *pacer {
	p := &pacer{start: time.Now()}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) / rate)
	}
	return p
}

// wait blocks until the i-th start time (open loop: a slow server does not
// slow arrivals).
func (p *pacer) wait(ctx context.Context, i int) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	d := time.Until(p.start.Add(time.Duration(i) * p.interval))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// chosen reports whether item i of a run falls in the share (0..1),
// spread evenly: exactly floor(n*share) of the first n items are chosen.
func chosen(i int, share float64) bool {
	if share <= 0 {
		return false
	}
	if share >= 1 {
		return true
	}
	return int(math.Floor(float64(i+1)*share+1e-9)) > int(math.Floor(float64(i)*share+1e-9))
}

// macFor returns the i-th MAC from a 6-hex-digit prefix.
func macFor(prefix string, i int) string {
	return strings.ToLower(prefix) + fmt.Sprintf("%06x", i&0xffffff)
}

func validMACPrefix(p string) bool {
	if len(p) != 6 {
		return false
	}
	for _, c := range strings.ToLower(p) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// finish prints the summary and writes the JSON file; it returns an error
// when the run had errors, so the exit status says so.
func finish(s stats.Summary, jsonPath string, w io.Writer) error {
	s.Print(w)
	if jsonPath != "" {
		f, err := os.Create(jsonPath)
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		if err := s.WriteJSON(f); err != nil {
			f.Close()
			return fmt.Errorf("json: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("json: %w", err)
		}
	}
	if s.Total > 0 {
		return fmt.Errorf("%d errors", s.Total)
	}
	return nil
}

// runN calls f(i) for i in [0, n) with at most conc calls in flight and
// starts paced at rate per second (0 = as fast as conc allows). Work not
// started before ctx ends is counted as not_started_deadline.
func runN(ctx context.Context, n, conc int, rate float64, rec *stats.Recorder, f func(i int)) {
	pace := newPacer(rate)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if pace.wait(ctx, i) != nil {
			rec.Error("not_started_deadline")
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			rec.Error("not_started_deadline")
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}(i)
	}
	wg.Wait()
}
