package portal

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"hotdesk/prov"
)

// auditList is the audit events that match, newest first.
type auditList struct {
	Items []prov.AuditEvent `json:"items"`
}

// statusView is what `hotdeskd status` prints.
type statusView struct {
	Version        string     `json:"version"`
	Time           time.Time  `json:"time"`
	Users          int        `json:"users"`
	Devices        int        `json:"devices"`
	Registrations  int        `json:"registrations"`
	ActiveSessions int        `json:"active_sessions"`
	Listeners      []Listener `json:"listeners"`
}

// registrationView is a binding with its owner resolved to names.
type registrationView struct {
	Registration
	User   string `json:"user"`
	Device string `json:"device"`
}

// registrationList is every live binding.
type registrationList struct {
	Items []registrationView `json:"items"`
}

// tokenBody is the POST /tokens body.
type tokenBody struct {
	Name string `json:"name"`
	// ExpiresInDays: 0 takes the configured default (token_ttl).
	ExpiresInDays int `json:"expires_in_days,omitempty"`
}

// tokenList is every token, without secrets.
type tokenList struct {
	Items []prov.APIToken `json:"items"`
}

// tokenView is a new token: the secret is shown once, only its SHA-256 is stored.
type tokenView struct {
	prov.APIToken
	Token string `json:"token"`
}

func (a *api) listAudit(w http.ResponseWriter, r *http.Request, _ principal) {
	v := r.URL.Query()
	q := prov.AuditQuery{Actor: v.Get("actor"), Action: v.Get("action"), Object: v.Get("object")}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "is an RFC 3339 time such as 2026-01-02T15:04:05Z", "since")
			return
		}
		q.Since = t
	}
	var ok bool
	if q.Limit, ok = a.limitParam(w, r, a.cfg.DefaultPageSize); !ok {
		return
	}
	es, err := a.d.Store.ListAudit(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if es == nil {
		es = []prov.AuditEvent{}
	}
	writeJSON(w, http.StatusOK, auditList{Items: es})
}

func (a *api) status(w http.ResponseWriter, r *http.Request, _ principal) {
	ctx := r.Context()
	out := statusView{Version: a.d.Version, Time: a.now().UTC(), Listeners: []Listener{}}
	var err error
	if out.Users, err = a.d.Store.CountUsers(ctx); err != nil {
		a.fail(w, r, err)
		return
	}
	if out.Devices, err = a.d.Store.CountDevices(ctx); err != nil {
		a.fail(w, r, err)
		return
	}
	ss, err := a.d.Store.ListSessions(ctx, prov.SessionQuery{ActiveOnly: true})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out.ActiveSessions = len(ss)
	if a.d.Registrations != nil {
		out.Registrations = len(a.d.Registrations.List(ctx))
	}
	if a.d.Listeners != nil {
		out.Listeners = append(out.Listeners, a.d.Listeners()...)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) listRegistrations(w http.ResponseWriter, r *http.Request, _ principal) {
	ctx := r.Context()
	out := registrationList{Items: []registrationView{}}
	if a.d.Registrations == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	n := a.names()
	for _, reg := range a.d.Registrations.List(ctx) {
		out.Items = append(out.Items, n.registration(ctx, reg))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) createToken(w http.ResponseWriter, r *http.Request, p principal) {
	var b tokenBody
	if !a.decode(w, r, &b) {
		return
	}
	b.Name = strings.TrimSpace(b.Name)
	if b.Name == "" || len(b.Name) > 64 {
		writeError(w, http.StatusBadRequest, "is required (at most 64 characters)", "name")
		return
	}
	if p.Who.Kind != prov.ActorAdmin {
		writeError(w, http.StatusForbidden, "only an admin account (HTTP Basic) may create tokens", "")
		return
	}
	adm, err := a.d.Store.GetAdmin(r.Context(), p.Who.Name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ttl := a.cfg.TokenTTL
	if b.ExpiresInDays != 0 {
		ttl = time.Duration(b.ExpiresInDays) * 24 * time.Hour
		if b.ExpiresInDays < 0 || ttl > a.cfg.TokenMaxTTL {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("must be between 1 and %d days",
				int(a.cfg.TokenMaxTTL/(24*time.Hour))), "expires_in_days")
			return
		}
	}
	tok, hash := newToken()
	now := a.now()
	t := prov.APIToken{Name: b.Name, AdminID: adm.ID, Hash: hash, Prefix: tok[:tokenPrefixLen], CreatedAt: now,
		ExpiresAt: now.Add(ttl)}
	if err := a.d.Store.CreateToken(r.Context(), &t); err != nil {
		a.fail(w, r, err)
		return
	}
	a.mgr.Audit(r.Context(), p.actor(), "token.create", prov.TokenObject(b.Name), nil, t)
	writeJSON(w, http.StatusCreated, tokenView{APIToken: t, Token: tok})
}

func (a *api) listTokens(w http.ResponseWriter, r *http.Request, _ principal) {
	ts, err := a.d.Store.ListTokens(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if ts == nil {
		ts = []prov.APIToken{}
	}
	writeJSON(w, http.StatusOK, tokenList{Items: ts})
}

func (a *api) revokeToken(w http.ResponseWriter, r *http.Request, p principal) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "is not a token ID", "id")
		return
	}
	t, err := a.revoke(r.Context(), id, p.actor())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// revoke revokes the token with id for the API and the admin portal.
func (a *api) revoke(ctx context.Context, id int64, actor prov.Actor) (prov.APIToken, error) {
	if err := a.d.Store.RevokeToken(ctx, id, a.now()); err != nil {
		return prov.APIToken{}, err
	}
	ts, err := a.d.Store.ListTokens(ctx)
	if err != nil {
		return prov.APIToken{}, err
	}
	for _, t := range ts {
		if t.ID == id {
			a.mgr.Audit(ctx, actor, "token.revoke", prov.TokenObject(t.Name), nil, t)
			return t, nil
		}
	}
	return prov.APIToken{}, prov.ErrNotFound
}
