package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"hotdesk/daemon"
)

// apiClient talks to a running daemon's admin API, so that what the CLI
// changes takes effect on phones exactly as a change made in the portal.
type apiClient struct {
	base  string
	user  string
	pass  string
	token string
	http  *http.Client
}

// clientFlags adds the flags that locate and authenticate to the admin API.
func clientFlags(fs *flag.FlagSet) func() (*apiClient, error) {
	conf := fs.String("c", "", "config file (to find admin.listen)")
	admin := fs.String("admin", "", "admin API base URL (default: from admin.listen)")
	user := fs.String("user", "admin", "admin account (password from $HOTDESK_PASSWORD)")
	return func() (*apiClient, error) {
		base := *admin
		if base == "" {
			cfg, _, err := daemon.LoadFile(*conf)
			if err != nil {
				return nil, err
			}
			host, port, err := net.SplitHostPort(cfg.Admin.Listen)
			if err != nil {
				return nil, fmt.Errorf("admin.listen: %w", err)
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			scheme := "http"
			if cfg.Admin.TLSCert != "" {
				scheme = "https"
			}
			base = scheme + "://" + net.JoinHostPort(host, port)
		}
		c := &apiClient{base: strings.TrimSuffix(base, "/"), user: *user, pass: os.Getenv("HOTDESK_PASSWORD"),
			token: os.Getenv("HOTDESK_TOKEN"), http: &http.Client{Timeout: 5 * time.Minute}}
		if c.token == "" && c.pass == "" {
			return nil, errors.New("set HOTDESK_TOKEN (an API token) or HOTDESK_PASSWORD (the admin's password)")
		}
		return c, nil
	}
}

// do sends a request and decodes a JSON answer into out; a 4xx/5xx is an error
// carrying the API's message.
func (c *apiClient) do(ctx context.Context, method, path, ctype string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	} else {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w (is hotdeskd running?)", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e struct{ Error, Field string }
		_ = json.Unmarshal(data, &e)
		if e.Field != "" {
			return fmt.Errorf("%s %s: %d: %s: %s", method, path, resp.StatusCode, e.Field, e.Error)
		}
		return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, strings.TrimSpace(e.Error+string(bytes.TrimSpace(data[:min(len(data), 200)]))))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// userImport runs `hotdeskd user import [--dry-run] FILE.csv`.
func userImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return errors.New("usage: hotdeskd user import [-c FILE] [--admin URL] [--dry-run] FILE.csv")
	}
	fs := flag.NewFlagSet("user import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := clientFlags(fs)
	dry := fs.Bool("dry-run", false, "check every row, create nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("user import needs exactly one CSV file")
	}
	c, err := client()
	if err != nil {
		return err
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	path := "/api/v1/users/import"
	if *dry {
		path += "?dry_run=1"
	}
	var rep struct {
		DryRun  bool `json:"dry_run"`
		Rows    int  `json:"rows"`
		Created int  `json:"created"`
		Refused int  `json:"refused"`
		Results []struct {
			Line     int    `json:"line"`
			Username string `json:"username"`
			Status   string `json:"status"`
			Field    string `json:"field"`
			Error    string `json:"error"`
		} `json:"results"`
	}
	if err := c.do(ctx, "POST", path, "text/csv", f, &rep); err != nil {
		return err
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			fmt.Fprintf(stdout, "line %d %s: %s %s: %s\n", r.Line, r.Username, r.Status, r.Field, r.Error)
		}
	}
	verb, n := "created", rep.Created
	if rep.DryRun {
		verb, n = "would create", rep.Rows-rep.Refused
	}
	fmt.Fprintf(stdout, "%d rows: %s %d, refused %d\n", rep.Rows, verb, n, rep.Refused)
	if rep.Refused > 0 {
		return fmt.Errorf("%d rows refused", rep.Refused)
	}
	return nil
}

// status runs `hotdeskd status`: what is listening and the counts.
func status(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := clientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var st map[string]any
	if err := c.do(ctx, "GET", "/api/v1/status", "", nil, &st); err != nil {
		return err
	}
	if ls, ok := st["listeners"].([]any); ok {
		fmt.Fprintln(stdout, "listening:")
		for _, l := range ls {
			m, _ := l.(map[string]any)
			fmt.Fprintf(stdout, "  %-13v %-5v %v\n", m["name"], m["proto"], m["addr"])
		}
		delete(st, "listeners")
	}
	keys := make([]string, 0, len(st))
	for k := range st {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "%s: %v\n", k, st[k])
	}
	return nil
}
