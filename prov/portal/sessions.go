package portal

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"hotdesk/prov"
)

// sessionView is a login session as the API shows it: no credentials.
type sessionView struct {
	prov.Session
	User   string `json:"user"`
	Device string `json:"device"`
	Active bool   `json:"active"`
}

// sessionList is the sessions that match a query, newest first.
type sessionList struct {
	Items []sessionView `json:"items"`
}

// loginBody is the POST /sessions body: a remote login. An admin may omit
// the password; anyone else must give the user's.
type loginBody struct {
	Device   string `json:"device"`
	User     string `json:"user"`
	Password string `json:"password"`
}

// names resolves IDs to user names and MACs, once per request; the API
// and the web portal share it.
type names struct {
	store   prov.Store
	users   map[int64]string
	devices map[int64]string
}

func newNames(store prov.Store) *names {
	return &names{store: store, users: map[int64]string{}, devices: map[int64]string{}}
}

func (a *api) names() *names { return newNames(a.d.Store) }

func (n *names) user(ctx context.Context, id int64) string {
	return cachedName(n.users, id, func() (string, error) {
		u, err := n.store.GetUserByID(ctx, id)
		return u.Username, err
	})
}

func (n *names) device(ctx context.Context, id int64) string {
	return cachedName(n.devices, id, func() (string, error) {
		d, err := n.store.GetDeviceByID(ctx, id)
		return d.MAC, err
	})
}

// cachedName returns cache[id], looking it up once; ID 0 and an ID that
// cannot be read are "".
func cachedName(cache map[int64]string, id int64, lookup func() (string, error)) string {
	if v, ok := cache[id]; ok || id == 0 {
		return v
	}
	if v, err := lookup(); err == nil {
		cache[id] = v
	}
	return cache[id]
}

// registration resolves a binding's owner (device, user or session) to
// the user name and MAC it stands for.
func (n *names) registration(ctx context.Context, reg Registration) registrationView {
	v := registrationView{Registration: reg}
	kind, id := reg.Owner.Kind, reg.Owner.ID
	switch kind {
	case prov.OwnerDevice:
		if did, err := strconv.ParseInt(id, 10, 64); err == nil {
			v.Device = n.device(ctx, did)
		}
	case prov.OwnerUser:
		if uid, err := strconv.ParseInt(id, 10, 64); err == nil {
			v.User = n.user(ctx, uid)
		}
	case prov.OwnerSession:
		if s, err := n.store.GetSession(ctx, id); err == nil {
			v.User, v.Device = n.user(ctx, s.UserID), n.device(ctx, s.DeviceID)
		}
	}
	return v
}

func (n *names) session(ctx context.Context, s prov.Session) sessionView {
	return sessionView{Session: s, User: n.user(ctx, s.UserID), Device: n.device(ctx, s.DeviceID), Active: s.Active()}
}

func (a *api) login(w http.ResponseWriter, r *http.Request, p principal) {
	if a.d.Sessions == nil {
		writeError(w, http.StatusServiceUnavailable, "login sessions are not available", "")
		return
	}
	var b loginBody
	if !a.decode(w, r, &b) {
		return
	}
	switch {
	case b.Device == "":
		writeError(w, http.StatusBadRequest, "is required", "device")
		return
	case b.User == "":
		writeError(w, http.StatusBadRequest, "is required", "user")
		return
	case b.Password == "" && !p.Admin:
		writeError(w, http.StatusBadRequest, "is required unless an admin logs the user in", "password")
		return
	}
	mac, ok := prov.NormalizeMAC(b.Device)
	if !ok {
		writeError(w, http.StatusBadRequest, "is not a MAC address", "device")
		return
	}
	actor, srcKey, now := p.actor(), "login-source:"+p.Remote, a.now()
	if !p.Admin {
		actor = prov.UserActor(b.User, p.Remote)
		// Sessions locks out per user and per device; a source trying
		// many users is slowed here.
		if a.auth.lock.Locked(srcKey, now) {
			a.fail(w, r, prov.ErrLocked)
			return
		}
	}
	sess, err := a.d.Sessions.Login(r.Context(), prov.LoginRequest{MAC: mac, Username: b.User, Secret: b.Password,
		Door: prov.DoorAPI, Verified: p.Admin && b.Password == "", Privileged: p.Admin, Remote: p.Remote, Actor: actor})
	if err != nil {
		if !p.Admin && errors.Is(err, prov.ErrAuth) {
			a.auth.lock.Fail(srcKey, now)
		}
		if errors.Is(err, prov.ErrDenied) {
			writeError(w, http.StatusForbidden, err.Error(), "")
			return
		}
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/sessions/"+sess.ID)
	n := a.names()
	n.devices[sess.DeviceID] = mac // known: one read fewer per login
	writeJSON(w, http.StatusCreated, n.session(r.Context(), sess))
}

func (a *api) listSessions(w http.ResponseWriter, r *http.Request, _ principal) {
	limit, ok := a.limitParam(w, r, a.cfg.MaxPageSize)
	if !ok {
		return
	}
	q := prov.SessionQuery{ActiveOnly: !boolParam(r, "all"), Limit: limit}
	ctx := r.Context()
	// ?device= and ?user= filter by ID; an unknown one matches nothing.
	for _, f := range []struct {
		param string
		dst   *int64
		id    func(string) (int64, error)
	}{
		{"device", &q.DeviceID, func(v string) (int64, error) { d, err := a.mgr.Device(ctx, v); return d.ID, err }},
		{"user", &q.UserID, func(v string) (int64, error) { u, err := a.d.Store.GetUser(ctx, v); return u.ID, err }},
	} {
		v := r.URL.Query().Get(f.param)
		if v == "" {
			continue
		}
		id, err := f.id(v)
		if errors.Is(err, prov.ErrNotFound) {
			writeJSON(w, http.StatusOK, sessionList{Items: []sessionView{}})
			return
		} else if err != nil {
			a.fail(w, r, err)
			return
		}
		*f.dst = id
	}
	ss, err := a.d.Store.ListSessions(ctx, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	n := a.names()
	out := sessionList{Items: []sessionView{}}
	for _, s := range ss {
		out.Items = append(out.Items, n.session(ctx, s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getSession(w http.ResponseWriter, r *http.Request, _ principal) {
	s, err := a.d.Store.GetSession(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.names().session(r.Context(), s))
}

// logout ends a session with reason admin, through Sessions.End like
// every logout: credentials revoked, bindings removed, check-sync sent.
func (a *api) logout(w http.ResponseWriter, r *http.Request, p principal) {
	if a.d.Sessions == nil {
		writeError(w, http.StatusServiceUnavailable, "login sessions are not available", "")
		return
	}
	id := r.PathValue("id")
	if err := a.d.Sessions.End(r.Context(), id, prov.EndAdmin, p.actor()); err != nil {
		a.fail(w, r, err)
		return
	}
	s, err := a.d.Store.GetSession(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.names().session(r.Context(), s))
}
