package provhttp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/auth"
	"hotdesk/prov/files"
	"hotdesk/sip/digestserver"
)

// Logins is the native login door: called when a phone fetches
// <user>.cfg with the user's own digest credentials, after provhttp has
// verified them against User.LoginHA1. It returns the (new or already
// active) session of username on the device with mac; any error answers
// 401, like a wrong password. It must be idempotent for an active session:
// phones re-fetch <user>.cfg with the same credentials.
type Logins interface {
	NativeLogin(ctx context.Context, mac, username, remote string) (prov.Session, error)
	// NativeGuard starts a digest check of username's password against the
	// login lockout: ok false means locked; done(failed) ends the attempt.
	NativeGuard(username, remote string) (done func(failed bool), ok bool)
	// ExtensionMobility decides a Cisco MPP Extension Mobility fetch
	// (prov.Sessions.ExtensionMobility): username's digest verified, token
	// from the fetch's path. An error answers 401, like a wrong password.
	ExtensionMobility(ctx context.Context, mac, username, token, remote string) (prov.EMResult, error)
}

// Accounts is the lookup provhttp needs to check digest credentials;
// prov.Store satisfies it.
type Accounts interface {
	GetUser(ctx context.Context, username string) (prov.User, error)
}

// Deps are the handler's collaborators; Logins may be nil (no native login).
type Deps struct {
	Files    *files.Files
	Accounts Accounts
	Logins   Logins
	// Pages is the phone-browser login door; nil serves none.
	Pages  *PhonePages
	Logger *slog.Logger
	Now    func() time.Time
}

// Handler serves the namespace under the path prefix.
type Handler struct {
	cfg    Config
	files  *files.Files
	acct   Accounts
	logins Logins
	pages  *PhonePages
	log    *slog.Logger
	nonces *digestserver.Nonces
	now    func() time.Time
	limit  *failLimiter
	// noStore is the Cache-Control value of rendered files, shared by
	// every response (net/http only reads it).
	noStore []string
	// realmKey makes the realm of a user who has no login HA1s (or does not
	// exist) look like anyone's: challenges do not tell users apart.
	realmKey []byte
}

// New returns the provisioning handler.
func New(cfg Config, d Deps) (*Handler, error) {
	if d.Files == nil || d.Accounts == nil {
		return nil, errors.New("provhttp: files and accounts are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Handler{cfg: cfg, files: d.Files, acct: d.Accounts, logins: d.Logins, pages: d.Pages, log: d.Logger,
		nonces: digestserver.New(cfg.NonceTTL, maxTrackedAnswers, maxUsesPerNonce), now: d.Now,
		limit:    newFailLimiter(cfg.FailBurst, cfg.FailInterval, d.Now),
		realmKey: []byte(auth.RandomSecret(16)), noStore: []string{"no-store"}}, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := files.Request{Proto: files.ProtoHTTP, UserAgent: headerValue(r.Header, "User-Agent")}
	if r.TLS != nil {
		req.Proto = files.ProtoHTTPS
	}
	req.Remote, _ = netip.ParseAddrPort(r.RemoteAddr)
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		req.Local = localAddrOf(la)
	}
	cw := &countingWriter{ResponseWriter: w}
	rl := reqLine{ctx: r.Context(), method: r.Method, path: r.URL.Path, uri: r.URL.RequestURI()}
	kind := files.KindOther
	defer func() { h.files.Observe(req.Proto, kind, cw.code(), cw.n) }()

	src := req.Remote.Addr().Unmap()
	if h.limit.blocked(src) {
		http.Error(cw, "too many failed requests", http.StatusTooManyRequests)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, h.cfg.PathPrefix+"/")
	if !ok {
		h.notFound(cw, src)
		return
	}
	req.Path = name
	if rest, ok := strings.CutPrefix(name, PhonePagesPath); ok && h.pages != nil && (rest == "" || rest[0] == '/') {
		h.pages.ServeHTTP(cw, r, strings.TrimPrefix(rest, "/"))
		return
	}
	em, file, isEM := emFetchOf(name)
	if isEM {
		if file == "" || r.Method == http.MethodPut {
			h.notFound(cw, src)
			return
		}
		name, req.Path = file, file
	}
	kind = files.KindOf(name)
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPut {
		cw.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(cw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if auth := headerValue(r.Header, "Authorization"); auth != "" {
		if ok, stale := h.authenticate(rl, auth, &req, kind, em); !ok {
			h.challenge(cw, rl, src, stale)
			return
		}
	}
	if r.Method == http.MethodPut {
		h.put(cw, r, req, src)
		return
	}
	h.get(cw, r, rl, req, src)
}

func (h *Handler) get(w *countingWriter, r *http.Request, rl reqLine, req files.Request, src netip.Addr) {
	c, err := h.files.Read(r.Context(), req)
	if err != nil {
		h.fail(w, rl, err, src)
		return
	}
	defer c.Close()
	hd := w.Header()
	if hh := c.HTTP; hh != nil {
		// A cached rendered file: its header values were built once.
		hd["Content-Type"], hd["Etag"], hd["Cache-Control"] = hh.ContentType, hh.ETag, h.noStore
		if headerValue(r.Header, "If-None-Match") == c.ETag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		hd["Content-Length"] = hh.ContentLength
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = io.Copy(w, c.Body) // one Write: bytes.Reader writes itself whole
		}
		return
	}
	hd.Set("Content-Type", c.ContentType)
	if c.ETag != "" {
		hd.Set("ETag", c.ETag)
	}
	if c.Kind == files.KindStatic {
		http.ServeContent(w, r, c.Name, c.ModTime, c.Body) // Range, If-Modified-Since
		return
	}
	// Rendered files are small and carry secrets: no ranges, no caching by
	// intermediaries, but a conditional GET by ETag still saves the body.
	hd.Set("Cache-Control", "no-store")
	if c.ETag != "" && r.Header.Get("If-None-Match") == c.ETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.FormatInt(c.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, c.Body)
	}
}

func (h *Handler) put(w *countingWriter, r *http.Request, req files.Request, src netip.Addr) {
	rl := reqLine{ctx: r.Context(), method: r.Method, path: r.URL.Path}
	if r.ContentLength > h.cfg.MaxUploadBytes {
		h.fail(w, rl, files.ErrTooLarge, src)
		return
	}
	if err := h.files.Write(r.Context(), req, r.Body); err != nil {
		h.fail(w, rl, err, src)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail maps a namespace error to its answer; 401 and 404 spend the
// source's failure budget.
func (h *Handler) fail(w errorWriter, rl reqLine, err error, src netip.Addr) {
	switch {
	case errors.Is(err, prov.ErrAuth):
		h.challenge(w, rl, src, false)
	case errors.Is(err, prov.ErrNotFound):
		h.notFound(w, src)
	case errors.Is(err, files.ErrBadName):
		w.error("bad request", http.StatusBadRequest)
	case errors.Is(err, files.ErrTooLarge):
		w.error("upload too large", http.StatusRequestEntityTooLarge)
	case errors.Is(err, files.ErrQuota):
		w.error("upload quota exceeded", http.StatusInsufficientStorage)
	case errors.Is(err, prov.ErrInvalid):
		w.error("upload refused: "+errorField(err), http.StatusBadRequest)
	default:
		h.log.Error("provisioning request", "path", rl.path, "method", rl.method, "err", err)
		w.error("internal error", http.StatusInternalServerError)
	}
}

func errorField(err error) string {
	var fe *prov.FieldError
	if errors.As(err, &fe) {
		return "malformed"
	}
	return "invalid"
}

// notFound is the one answer for a missing file, a wrong MAC and an unknown device.
func (h *Handler) notFound(w errorWriter, src netip.Addr) {
	h.limit.fail(src)
	w.error("404 page not found", http.StatusNotFound)
}

// challenge answers 401 with a SHA-256 and an MD5 digest challenge (RFC 7616 §3.7).
func (h *Handler) challenge(w errorWriter, rl reqLine, src netip.Addr, stale bool) {
	h.limit.fail(src)
	realm := h.realm(rl)
	nonce := h.nonces.Issue(h.now(), nonceSource)
	for _, alg := range []string{"SHA-256", "MD5"} {
		w.addHeader("WWW-Authenticate", digestserver.Challenge(realm, nonce, alg, stale))
	}
	w.error("unauthorized", http.StatusUnauthorized)
}

// realm is the digest realm of the file rl asks for: a user's files are
// challenged in the realm of that user's login HA1s (salted per password),
// a device's in prov.LoginRealm (its credentials are kept in clear, any
// realm verifies).
func (h *Handler) realm(rl reqLine) string {
	if rl.realm != "" {
		return rl.realm
	}
	name, _ := strings.CutPrefix(rl.path, h.cfg.PathPrefix+"/")
	user := files.UserOfFile(name)
	if em, _, ok := emFetchOf(name); ok {
		user = em.user // the user signing in on a Cisco MPP
	}
	if user == "" {
		return prov.LoginRealm
	}
	if u, err := h.acct.GetUser(rl.ctx, user); err == nil {
		if realm := prov.LoginRealmOf(u); realm != "" {
			return realm
		}
	}
	m := hmac.New(sha256.New, h.realmKey)
	m.Write([]byte(user))
	return prov.LoginRealm + "-" + hex.EncodeToString(m.Sum(nil)[:8])
}

// headerValue is h.Get(key) for a key already in canonical form, without
// canonicalizing it again (net/http stored the request's keys canonical).
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// localAddrOf is the local address a request came in on, read without
// formatting it where the listener's address type allows.
func localAddrOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// reqLine is what the answer to a request depends on beyond its
// files.Request, read from either front end (ServeHTTP, serveFast).
type reqLine struct {
	ctx               context.Context
	method, path, uri string
	// realm is the digest realm of path when the front end already knows
	// it (a device's file: prov.LoginRealm), "" to have realm work it out.
	realm string
}

// errorWriter writes an error answer on either front end.
type errorWriter interface {
	addHeader(key, value string)
	// error answers as http.Error does.
	error(msg string, code int)
}

// countingWriter records the status and body bytes for metrics.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) addHeader(key, value string) { c.Header().Add(key, value) }
func (c *countingWriter) error(msg string, code int)  { http.Error(c, msg, code) }

func (c *countingWriter) code() int {
	if c.status == 0 {
		return http.StatusOK
	}
	return c.status
}

// emFetch is a Cisco MPP Extension Mobility fetch: the user ID typed at
// the phone's Sign in softkey and the token of the session its profile
// rule carries (prov.EMPath: em/<user>/<token>/<file>).
type emFetch struct{ user, token string }

// emFetchOf splits an Extension Mobility path; file is "" when malformed.
func emFetchOf(name string) (*emFetch, string, bool) {
	rest, ok := strings.CutPrefix(name, files.EMPath+"/")
	if !ok {
		return nil, "", false
	}
	user, rest, ok1 := strings.Cut(rest, "/")
	token, file, ok2 := strings.Cut(rest, "/")
	// The phone's own profile, <MAC>.xml ($MA.xml), is the only file.
	base, isXML := strings.CutSuffix(file, ".xml")
	if _, isMAC := prov.NormalizeMAC(base); !ok1 || !ok2 || user == "" || token == "" || !isXML || !isMAC {
		return &emFetch{}, "", true
	}
	return &emFetch{user: user, token: token}, file, true
}
