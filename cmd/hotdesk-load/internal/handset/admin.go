package handset

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Admin is a client of hotdesk's /api/v1 with admin Basic auth.
type Admin struct {
	Base   string
	User   string
	Pass   string
	Client *http.Client
}

// NewAdmin returns an API client with a bounded timeout.
func NewAdmin(base, user, pass string) *Admin {
	t := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	return &Admin{Base: strings.TrimRight(base, "/"), User: user, Pass: pass,
		Client: &http.Client{Transport: t, Timeout: 30 * time.Second}}
}

func (a *Admin) do(ctx context.Context, method, path string, body any) ([]byte, *http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, rd)
	if err != nil {
		return nil, nil, kerr("api_request", err)
	}
	req.SetBasicAuth(a.User, a.Pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	res, err := a.Client.Do(req)
	if err != nil {
		return nil, nil, kerr("api_conn", err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, res, kerr("api_read", err)
	}
	if res.StatusCode/100 != 2 {
		return out, res, kerr("api_"+strconv.Itoa(res.StatusCode), fmt.Errorf("%s %s: %s: %.200s", method, path, res.Status, out))
	}
	return out, res, nil
}

// Login opens a session of user on the device with mac (admin: no
// password) and returns its id.
func (a *Admin) Login(ctx context.Context, mac, user string) (string, error) {
	body, res, err := a.do(ctx, http.MethodPost, "/api/v1/sessions", map[string]string{"device": mac, "user": user})
	if err != nil {
		return "", err
	}
	id := SessionID(body)
	if id == "" && res != nil {
		if loc := res.Header.Get("Location"); loc != "" {
			id = loc[strings.LastIndexByte(loc, '/')+1:]
		}
	}
	if id == "" {
		return "", kerr("api_no_session_id", fmt.Errorf("login answer has no id: %.200s", body))
	}
	return id, nil
}

// SessionID finds the id in a session answer: {"id": …} or
// {"session": {"id": …}}, as a string or a number.
func SessionID(body []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return ""
	}
	if raw, ok := top["id"]; ok {
		return rawID(raw)
	}
	for _, k := range []string{"session", "data"} {
		if raw, ok := top[k]; ok {
			return SessionID(raw)
		}
	}
	return ""
}

func rawID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// Logout ends a session.
func (a *Admin) Logout(ctx context.Context, id string) error {
	_, _, err := a.do(ctx, http.MethodDelete, "/api/v1/sessions/"+url.PathEscape(id), nil)
	return err
}

// CreateUser creates a user with one number, a login password unless
// password is "" and a site unless siteID is 0; an existing user (409) is
// fine.
func (a *Admin) CreateUser(ctx context.Context, name, password, number string, siteID int64) error {
	body := map[string]any{"username": name, "numbers": []string{number}, "first_name": "Load", "last_name": name,
		"email": name + "@load.invalid"}
	if password != "" {
		body["password"] = password
	}
	if siteID != 0 {
		body["site_id"] = siteID
	}
	_, res, err := a.do(ctx, http.MethodPost, "/api/v1/users", body)
	if res != nil && res.StatusCode == http.StatusConflict {
		return nil
	}
	return err
}
