package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

// authLevel says who may call a route.
type authLevel int

const (
	// authAdmin: an admin account (Basic) or an API token (Bearer).
	authAdmin authLevel = iota
	// authOptional: anyone; an admin's credentials, when given, are checked
	// and widen what the handler allows.
	authOptional
	// authNone: public (the OpenAPI document).
	authNone
	// authSession: a user's portal session (the session cookie, and
	// X-CSRF-Token on writes); the /api/v1/me routes, served by the web.
	authSession
)

// principal is the authenticated caller.
type principal struct {
	Admin bool
	// Who is the admin or token (zero when anonymous).
	Who    prov.Actor
	Remote string
}

func (p principal) actor() prov.Actor {
	a := p.Who
	a.Remote = p.Remote
	return a
}

// authenticator checks admin credentials with lockout per source and per
// name, and remembers verified Basic credentials for a short while.
type authenticator struct {
	store  prov.Store
	now    func() time.Time
	lock   *provauth.Lockout
	ttl    time.Duration
	hasher *provauth.Hasher
	// flight makes concurrent requests with the same credentials share
	// one argon2id check: a script firing 200 requests at once would
	// otherwise queue 200 hashes before the first result is cached.
	flight singleflight.Group
	mu     sync.Mutex
	cache  map[[32]byte]cached
}

type cached struct {
	name  string
	until time.Time
}

// maxAuthCache bounds the cache; it is cleared when full.
const maxAuthCache = 1024

func newAuthenticator(cfg Config, st prov.Store, now func() time.Time, h *provauth.Hasher) *authenticator {
	return &authenticator{store: st, now: now, ttl: cfg.AuthCacheTTL, hasher: h, cache: map[[32]byte]cached{},
		lock: provauth.NewLockout(provauth.LockoutConfig{Threshold: cfg.LockoutThreshold, Base: cfg.LockoutBase}, now)}
}

var (
	errNoCredentials = errors.New("no credentials")
	errBadScheme     = errors.New("unsupported authorization scheme")
	// errTokenUnusable: a known token that has expired or was revoked.
	errTokenUnusable = fmt.Errorf("token expired or revoked: %w", prov.ErrAuth)
)

// tokenTouchEvery is how stale a token's last-used time may get.
const tokenTouchEvery = time.Minute

// tokenPrefixLen is how much of a token its listing shows ("hdt_" and 4 more).
const tokenPrefixLen = 8

// authenticate answers 401/429 itself and returns false when the caller
// may not go on.
func (a *api) authenticate(w http.ResponseWriter, r *http.Request, level authLevel) (principal, bool) {
	p := principal{Remote: remoteHost(r)}
	if level == authNone {
		return p, true
	}
	who, err := a.auth.check(r.Context(), r, p.Remote)
	switch {
	case err == nil:
		p.Admin, p.Who = true, who
		return p, true
	case errors.Is(err, errNoCredentials) && level == authOptional:
		return p, true
	case errors.Is(err, prov.ErrLocked):
		a.m.authFail.WithLabelValues("locked").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(a.cfg.LockoutBase.Seconds())))
		writeError(w, http.StatusTooManyRequests, "too many failed attempts; try again later", "")
		return p, false
	case errors.Is(err, errNoCredentials):
		a.m.authFail.WithLabelValues("missing").Inc()
	case errors.Is(err, errBadScheme):
		a.m.authFail.WithLabelValues("scheme").Inc()
	case errors.Is(err, errTokenUnusable):
		a.m.authFail.WithLabelValues("token_unusable").Inc()
	default:
		a.m.authFail.WithLabelValues("bad_credentials").Inc()
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="hotdesk", charset="UTF-8"`)
	writeError(w, http.StatusUnauthorized, "authentication required", "")
	return p, false
}

// check returns the actor of valid credentials (an admin or a token).
// Unknown name and wrong password fail alike (prov.ErrAuth), after the
// same argon2id work.
func (au *authenticator) check(ctx context.Context, r *http.Request, remote string) (prov.Actor, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return prov.Actor{}, errNoCredentials
	}
	now := au.now()
	srcKey := "api-source:" + remote
	if au.lock.Locked(srcKey, now) {
		return prov.Actor{}, prov.ErrLocked
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			au.lock.Fail(srcKey, now)
			return prov.Actor{}, prov.ErrAuth
		}
		nameKey := "api-admin:" + strings.ToLower(user)
		// Per name and source, so a guesser locks out itself, not the
		// admin (provauth.Lockout.TryGuess). Counted after the check: a script's
		// parallel requests share one check (flight), and counting them in
		// flight would refuse its own correct credentials.
		if au.lock.LockedGuess(nameKey, remote, now) {
			return prov.Actor{}, prov.ErrLocked
		}
		if au.cached(user, pass, now) {
			return prov.AdminActor(user, ""), nil
		}
		key := cacheKey(user, pass)
		_, err, _ := au.flight.Do(string(key[:]), func() (any, error) {
			// Shared by several requests: one caller going away must not
			// fail the others. Cached before the flight ends, so a request
			// arriving just after it finds the cache, not a new hash; one
			// that missed the cache just before it filled finds it here.
			if au.cached(user, pass, now) {
				return nil, nil
			}
			if err := au.verifyAdmin(context.WithoutCancel(ctx), user, pass); err != nil {
				return nil, err
			}
			au.remember(user, pass, now)
			return nil, nil
		})
		if errors.Is(err, prov.ErrAuth) {
			au.lock.Fail(srcKey, now)
			au.lock.FailGuess(nameKey, remote, now)
			return prov.Actor{}, err
		} else if err != nil {
			return prov.Actor{}, err
		}
		au.lock.GuessSucceeded(nameKey, remote, now)
		au.lock.Succeed(srcKey)
		return prov.AdminActor(user, ""), nil
	case "bearer":
		sum := sha256.Sum256([]byte(strings.TrimSpace(rest)))
		t, err := au.store.TokenByHash(ctx, hex.EncodeToString(sum[:]))
		if errors.Is(err, prov.ErrNotFound) {
			au.lock.Fail(srcKey, now)
			return prov.Actor{}, prov.ErrAuth
		} else if err != nil {
			return prov.Actor{}, err
		}
		if !t.Usable(now) {
			// Read from the store on every request: a revocation or the
			// expiry takes effect on the next request, not after a cache.
			return prov.Actor{}, errTokenUnusable
		}
		if now.Sub(t.LastUsedAt) >= tokenTouchEvery {
			// Recorded at most once a minute per token: a script's burst
			// of requests costs the store one write, not one each.
			if err := au.store.TouchToken(ctx, t.ID, now); err != nil && !errors.Is(err, prov.ErrNotFound) {
				return prov.Actor{}, err
			}
		}
		return prov.TokenActor(t.Name, ""), nil
	}
	return prov.Actor{}, errBadScheme
}

func (au *authenticator) verifyAdmin(ctx context.Context, user, pass string) error {
	adm, err := au.store.GetAdmin(ctx, user)
	if errors.Is(err, prov.ErrNotFound) {
		au.hasher.VerifyNobody(pass)
		return prov.ErrAuth
	} else if err != nil {
		return err
	}
	if !au.hasher.Verify(adm.PasswordHash, pass) {
		return prov.ErrAuth
	}
	return nil
}

// cacheKey binds name and password unambiguously: the name is length-
// prefixed, so no other split of the same bytes gives the same key.
func cacheKey(user, pass string) [32]byte {
	return sha256.Sum256([]byte(strconv.Itoa(len(user)) + ":" + user + pass))
}

func (au *authenticator) cached(user, pass string, now time.Time) bool {
	if au.ttl <= 0 {
		return false
	}
	au.mu.Lock()
	defer au.mu.Unlock()
	c, ok := au.cache[cacheKey(user, pass)]
	return ok && c.name == user && now.Before(c.until)
}

func (au *authenticator) remember(user, pass string, now time.Time) {
	if au.ttl <= 0 {
		return
	}
	au.mu.Lock()
	defer au.mu.Unlock()
	if len(au.cache) >= maxAuthCache {
		clear(au.cache)
	}
	au.cache[cacheKey(user, pass)] = cached{name: user, until: now.Add(au.ttl)}
}

// remoteHost is the client's address without port: the lockout key and
// the audit's "from where".
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// newToken makes an API token: only its SHA-256 is stored.
func newToken() (token, hash string) {
	token = "hdt_" + provauth.RandomSecret(24)
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:])
}
