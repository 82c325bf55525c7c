package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/icholy/digest"
	"github.com/pin/tftp/v3"

	"hotdesk/cmd/hotdesk-load/internal/handset"
	"hotdesk/cmd/hotdesk-load/internal/stats"
)

// runFetch fetches config files over HTTP (keep-alive, like wrk) or TFTP
// (one transfer per fetch, like curl tftp://), N fetches with C in flight.
func runFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "http://127.0.0.1:8080", "base URL: http://host:port[/prefix] or tftp://host:port")
	files := fs.String("files", "", "comma list of files to fetch in turn (default: <MAC>.cfg of -macs handsets)")
	macs := fs.Int("macs", 2, "handsets whose <MAC>.cfg to fetch when -files is empty")
	macPrefix := fs.String("mac-prefix", "0004f2", "MAC prefix (6 hex digits)")
	macStart := fs.Int("mac-start", 1, "first MAC index")
	n := fs.Int("n", 1000, "fetches")
	conc := fs.Int("c", 16, "fetches in flight")
	user := fs.String("user", "", "HTTP digest user (optional)")
	pass := fs.String("pass", "", "HTTP digest password")
	ua := fs.String("user-agent", handset.DefaultUserAgent, "User-Agent ({mac} is replaced by the first MAC)")
	blksize := fs.Int("blksize", 0, "TFTP blksize option (0 = 512, none sent)")
	capD := fs.Duration("duration-cap", 60*time.Second, "hard cap on the run")
	jsonPath := fs.String("json", "", "write the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *conc < 1 {
		return usageErr("-n and -c must be ≥ 1")
	}
	names, err := fetchNames(*files, *macPrefix, *macStart, *macs)
	if err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tftp") {
		return usageErr("-target must be an http://, https:// or tftp:// URL")
	}
	ctx, cancel := context.WithTimeout(ctx, *capD)
	defer cancel()
	get := tftpGetter(u, *blksize)
	if u.Scheme != "tftp" {
		get = httpGetter(*target, *conc, *user, *pass, strings.ReplaceAll(*ua, "{mac}", macFor(*macPrefix, *macStart)))
	}
	rec := stats.New()
	var bytes, ok atomic.Int64
	start := time.Now()
	runN(ctx, *n, *conc, 0, rec, func(i int) {
		t := time.Now()
		b, err := get(ctx, names[i%len(names)])
		if err != nil {
			rec.Error(handset.Kind(err))
			return
		}
		rec.Observe("fetch", time.Since(t))
		bytes.Add(b)
		ok.Add(1)
	})
	wall := time.Since(start)
	s := rec.Summarize("fetch "+u.Scheme, wall)
	s.Counters["files_ok"] = float64(ok.Load())
	s.Counters["files_per_s"] = float64(ok.Load()) / wall.Seconds()
	s.Counters["bytes"] = float64(bytes.Load())
	return finish(s, *jsonPath, stdout)
}

func httpGetter(base string, conc int, user, pass, ua string) func(context.Context, string) (int64, error) {
	var rt http.RoundTripper = &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	if user != "" {
		rt = &digest.Transport{Username: user, Password: pass, Transport: rt}
	}
	c := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	base = strings.TrimRight(base, "/")
	return func(ctx context.Context, name string) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+name, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("User-Agent", ua)
		res, err := c.Do(req)
		if err != nil {
			return 0, &handset.Error{Kind: "http_conn", Err: err}
		}
		defer res.Body.Close()
		nb, err := io.Copy(io.Discard, res.Body)
		if err != nil {
			return 0, &handset.Error{Kind: "http_read", Err: err}
		}
		if res.StatusCode != http.StatusOK {
			return 0, &handset.Error{Kind: fmt.Sprintf("http_%d", res.StatusCode), Err: fmt.Errorf("GET %s: %s", name, res.Status)}
		}
		return nb, nil
	}
}

func tftpGetter(u *url.URL, blksize int) func(context.Context, string) (int64, error) {
	host := u.Host
	if u.Port() == "" {
		host += ":69"
	}
	prefix := strings.Trim(u.Path, "/")
	return func(ctx context.Context, name string) (int64, error) {
		// One client per transfer: pin/tftp's client keeps per-transfer
		// state, and a phone uses a fresh port per file anyway.
		c, err := tftp.NewClient(host)
		if err != nil {
			return 0, &handset.Error{Kind: "tftp_client", Err: err}
		}
		c.SetTimeout(2 * time.Second)
		c.SetRetries(3)
		if blksize > 0 {
			c.SetBlockSize(blksize)
		}
		if prefix != "" {
			name = prefix + "/" + name
		}
		wt, err := c.Receive(name, "octet")
		if err != nil {
			return 0, &handset.Error{Kind: tftpKind(err), Err: err}
		}
		nb, err := wt.WriteTo(io.Discard)
		if err != nil {
			return 0, &handset.Error{Kind: "tftp_transfer", Err: err}
		}
		return nb, nil
	}
}

func tftpKind(err error) string {
	s := strings.ToLower(err.Error())
	switch {
	case strings.Contains(s, "not found"), strings.Contains(s, "code: 1"):
		return "tftp_not_found"
	case strings.Contains(s, "timeout"), strings.Contains(s, "timed out"):
		return "tftp_timeout"
	}
	return "tftp_error"
}

// fetchNames is -files, or <MAC>.cfg of -macs handsets.
func fetchNames(files, macPrefix string, macStart, macs int) ([]string, error) {
	var names []string
	if files != "" {
		for _, f := range strings.Split(files, ",") {
			if f = strings.TrimSpace(f); f != "" {
				names = append(names, f)
			}
		}
		if len(names) == 0 {
			return nil, usageErr("-files names no file")
		}
		return names, nil
	}
	if !validMACPrefix(macPrefix) || macs < 1 {
		return nil, usageErr("-mac-prefix must be 6 hex digits and -macs ≥ 1")
	}
	for i := 0; i < macs; i++ {
		names = append(names, macFor(macPrefix, macStart+i)+".cfg")
	}
	return names, nil
}
