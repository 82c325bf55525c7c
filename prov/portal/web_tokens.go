package portal

import (
	"net/http"
	"strconv"
	"time"

	"hotdesk/prov"
)

// tokenRow is one API token as the admin page lists it: never the secret.
type tokenRow struct {
	prov.APIToken
	State string
}

func (w *web) adminTokens(rw http.ResponseWriter, r *http.Request, q *request) {
	ts, err := w.d.Store.ListTokens(r.Context())
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	now := w.now()
	rows := make([]tokenRow, 0, len(ts))
	for _, t := range ts {
		rows = append(rows, tokenRow{APIToken: t, State: tokenState(t, now)})
	}
	w.render(rw, r, http.StatusOK, "tokens.html", &page{Title: "API tokens", S: q.s, Active: "tokens", Data: rows})
}

// tokenState is what the listing says of a token at now.
func tokenState(t prov.APIToken, now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked"
	case !t.Usable(now):
		return "expired"
	}
	return "active"
}

func (w *web) adminRevokeToken(rw http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil {
		err = w.d.Store.RevokeToken(ctx, id, w.now())
	}
	if err != nil {
		w.redirect(rw, r, q.s, "/admin/tokens", "Could not revoke the token: "+err.Error())
		return
	}
	ts, _ := w.d.Store.ListTokens(ctx)
	for _, t := range ts {
		if t.ID == id {
			w.mgr.Audit(ctx, q.actor(r), "token.revoke", prov.TokenObject(t.Name), nil, t)
		}
	}
	w.redirect(rw, r, q.s, "/admin/tokens", "Token revoked: it is refused from now on.")
}
