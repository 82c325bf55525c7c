package prov

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"hotdesk/prov/auth"
)

// Door is the way a login came in; it is stored with the session.
type Door string

// Login doors.
const (
	DoorNative      Door = "native"
	DoorBrowser     Door = "browser"
	DoorFeatureCode Door = "feature_code"
	DoorAPI         Door = "api"
	// DoorAssigned is the permanent login of a desk phone assigned to its
	// user: persistent, never idle-ended, and not counted against the
	// one-login-per-user policy.
	DoorAssigned Door = "assigned"
)

// EndReason is why a session ended; it is stored with the session.
type EndReason string

// Logout reasons.
const (
	EndLogout          EndReason = "logout"
	EndPhoneUnregister EndReason = "phone_unregistered"
	EndIdle            EndReason = "idle"
	EndMaxLength       EndReason = "max_length"
	EndDaily           EndReason = "daily_logout"
	EndAdmin           EndReason = "admin"
	EndReplaced        EndReason = "replaced"
	EndUserDisabled    EndReason = "user_disabled"
	EndUnassigned      EndReason = "unassigned"
	EndReboot          EndReason = "reboot"
	// EndClaimed: the user's desk-phone assignment moved to another phone
	// by a deployment-PIN claim, and the permanent login with it.
	EndClaimed EndReason = "claimed"
)

// LoginRequest is what every door hands to Sessions.Login.
type LoginRequest struct {
	MAC      string
	Username string
	Secret   string
	Door     Door
	// Verified: the door already checked the secret (HTTP digest against
	// the login HA1) or an admin logs the user in without one.
	Verified bool
	// Privileged: an admin or an API token logs the user in; it may do so
	// on any phone. Every other login must come from the phone itself.
	Privileged bool
	// AtDevice: the door proved the request comes from the phone itself
	// (a feature code dialled with the phone's own credential). Otherwise
	// Remote must be an address the phone is registered from.
	AtDevice bool
	Remote   string
	// Actor is who logs the user in, for the audit log (its Remote
	// defaults to Remote).
	Actor Actor
}

// Sessions owns login sessions: every login and every logout goes through it.
type Sessions struct {
	store  Store
	creds  *Credentials
	events *Events
	reg    Registrar
	// syncEvent is SessionsDeps.SyncEvent.
	syncEvent func(vendor string, reboot bool) string
	logger    *slog.Logger
	now       func() time.Time
	lockout   *auth.Lockout
	hasher    *auth.Hasher
	// devMu guards the per-device facts that tell a reboot from a logout
	// (each line's Call-ID, a cache of the stored DeviceSignals) and the
	// held check-syncs.
	devMu   sync.Mutex
	callIDs map[int64]lineCalls
	// deployedSeen is when each device was last known deployed and seen
	// (seenDeployed).
	deployedSeen map[int64]time.Time
	sig          map[int64]DeviceSignals
	// sigBlank are the devices whose stored signals are none (no row, or
	// one of zeros), as far as this node wrote them: updating them to
	// nothing again writes nothing (a new phone's first registration ends
	// the wait its boot fetch set in memory alone). Not kept on a cluster.
	sigBlank map[int64]struct{}
	// enrolled are the statuses of devices their phone's first fetch just
	// created, until an edit of them or their first deployed check, which
	// then marks them deployed without reading them (not kept on a cluster).
	enrolled map[int64]DeviceStatus
	// activeCache, when set, answers activeOn.
	activeCache ActiveCache
	// deferred are check-syncs waiting for the phone to finish applying
	// the previous one, with where to send them; the store keeps a copy
	// (HeldSync) for the node the phone registers with next, or this node
	// restarted.
	deferred map[int64]heldSync
	// heldLocks serialise a device's held check-sync between memory and
	// the store.
	heldLocks keyLocks
	// node is this node's name, under which its held check-syncs are kept.
	node string
	// sigLocks serialise the updates of one device's signals.
	sigLocks keyLocks
	// timers own the delayed work (deferred check-syncs, the unbind
	// recheck), stopped by Close.
	timers afterFuncs
	// unbound are the addresses a device's session lines were registered
	// from when a logout removed them: a phone taken over by the next
	// login (a desk phone's own session replaced) holds no line until it
	// registers the new one, and is still at that address meanwhile.
	unbound map[int64]unboundFrom
	// locks serialise logins and logouts per user and per device, so
	// one-login-per-user and one-session-per-phone hold under races.
	// Starting a session holds its user and device; EndAll holds the user.
	// A login ending the previous session on its phone holds only that
	// phone, not the other user: two paths may then end one session, and
	// endLocked's claim (the store's conditional update) keeps it to one.
	locks keyLocks
	// slots bound how many logins and logouts do their store work at
	// once. The store has one writer: a storm's hundreds of parallel
	// logins would queue ahead of the phones' own enrolment writes and
	// slow every phone's boot. Taken before the key locks, never after.
	slots chan struct{}
	// cluster is the shared store when several nodes use it (nil on one
	// node): logins also take its locks, a phone is looked for on every
	// node, and the signals are read from it rather than from a cache
	// another node's writes would leave stale.
	cluster ClusterStore
	// remoteReach are the lines a logout on another node replaced on this
	// node's phones, for the check-sync of the login that replaced it.
	remoteReach map[int64]reachSet
	coalesce    time.Duration
	wall        func() time.Time
	ready       func() bool
	m           sessionMetrics
}

type sessionMetrics struct {
	logins      *prometheus.CounterVec
	logouts     *prometheus.CounterVec
	active      prometheus.Gauge
	unbindDelay prometheus.Histogram
	checkSync   *prometheus.CounterVec
	notAtPhone  *prometheus.CounterVec
	emStale     prometheus.Counter
}

// SessionsDeps are the collaborators of Sessions.
type SessionsDeps struct {
	Store       Store
	Credentials *Credentials
	Events      *Events
	Registrar   Registrar
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	Now         func() time.Time
	Lockout     *auth.Lockout
	// Hasher bounds parallel argon2id work; share the Directory's
	// (Directory.Hasher). nil makes one for Sessions alone.
	Hasher *auth.Hasher
	// CoalesceSync leaves out a check-sync to a phone that was sent one
	// this recently and has not fetched since (0: 2 s; negative: never).
	CoalesceSync time.Duration
	// Wall is the registrar's clock (nil: time.Now): the reboot-versus-
	// logout signals are ordered by it, as registrar events reach Sessions
	// later than the fetches and logins they follow.
	Wall func() time.Time
	// SyncEvent names the NOTIFY event that makes a phone of vendor
	// re-provision (render.SyncEvent); nil: Polycom's check-sync.
	SyncEvent func(vendor string, reboot bool) string
	// Ready reports whether logins may start (nil: always): a cluster node
	// whose events are resynchronising refuses them with ErrUnavailable,
	// as it may not know of sessions other nodes started meanwhile.
	Ready func() bool
	// Node is this node's name (cluster.node): the check-syncs it holds
	// are kept in the store under it, and resumed when it starts.
	Node string
	// ActiveCache, when set, serves the registrar event path's reads of
	// a device's active session (activeOn).
	ActiveCache ActiveCache
}

// NewSessions returns the session service.
func NewSessions(ctx context.Context, d SessionsDeps) (*Sessions, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Lockout == nil {
		d.Lockout = auth.NewLockout(auth.LockoutConfig{}, d.Now)
	}
	if d.Hasher == nil {
		d.Hasher = auth.NewHasher(auth.DefaultArgon2, 0)
	}
	if d.CoalesceSync == 0 {
		d.CoalesceSync = defaultCoalesceSync
	}
	if d.Wall == nil {
		d.Wall = time.Now
	}
	f := promauto.With(d.Registerer)
	if d.SyncEvent == nil {
		d.SyncEvent = func(_ string, reboot bool) string {
			if reboot {
				return "check-sync;reboot=true"
			}
			return "check-sync"
		}
	}
	s := &Sessions{syncEvent: d.SyncEvent, store: d.Store, creds: d.Credentials, events: d.Events, reg: d.Registrar, logger: d.Logger,
		now: d.Now, lockout: d.Lockout, hasher: d.Hasher, callIDs: map[int64]lineCalls{}, deployedSeen: map[int64]time.Time{},
		sig: map[int64]DeviceSignals{}, sigBlank: map[int64]struct{}{}, enrolled: map[int64]DeviceStatus{}, deferred: map[int64]heldSync{}, coalesce: d.CoalesceSync, wall: d.Wall, node: d.Node, unbound: map[int64]unboundFrom{}, slots: make(chan struct{}, parallelSessionWork),
		remoteReach: map[int64]reachSet{}, ready: d.Ready, activeCache: d.ActiveCache}
	if c, ok := d.Store.(ClusterStore); ok && c.Clustered() {
		s.cluster = c
	}
	if d.Events != nil {
		d.Events.Subscribe(s.forgetDeployed)
		d.Events.Subscribe(s.onEnrolled)
	}
	s.m = sessionMetrics{
		logins: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_logins_total",
			Help: "Login attempts by door and result."}, []string{"door", "result"}),
		logouts: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_logouts_total",
			Help: "Ended login sessions by reason."}, []string{"reason"}),
		active: f.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_prov_sessions_active",
			Help: "Login sessions in progress."}),
		unbindDelay: f.NewHistogram(prometheus.HistogramOpts{Name: "hotdesk_prov_logout_unbind_seconds",
			Help:    "Time from a logout to its bindings removed and check-sync sent.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1}}),
		checkSync: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_check_sync_total",
			Help: "Check-syncs prov asked for, per phone address: sent, coalesced, deferred, dropped (too many in flight), unreachable (no registration known) or elsewhere (another cluster node holds the phone and tells it)."},
			[]string{"result"}),
		notAtPhone: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_not_at_phone_total",
			Help: "User logins and phone-page logouts refused because they did not come from the phone they name."},
			[]string{"action"}),
		emStale: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_prov_em_stale_total",
			Help: "Cisco Extension Mobility re-syncs that still carried the login of an ended session: answered with the device's profile, no new login."}),
	}
	act, err := d.Store.ListSessions(ctx, SessionQuery{ActiveOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	s.m.active.Set(float64(len(act)))
	// Each line's Call-ID, so a restart tells a reboot as before it.
	bs, err := d.Store.ListBindings(ctx)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	for _, b := range bs {
		if b.DeviceID == 0 {
			continue
		}
		s.callIDs[b.DeviceID], _ = s.callIDs[b.DeviceID].set(callKey(b), b.CallID)
	}
	if err := s.resumeHeld(ctx); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	return s, nil
}

// Login logs a user in on a device. Every failure a caller can see is
// ErrAuth, ErrLocked or ErrDenied, so no door can tell an unknown user from
// a wrong password.
func (s *Sessions) Login(ctx context.Context, req LoginRequest) (Session, error) {
	sess, err := s.login(ctx, req)
	result := "ok"
	switch {
	case errors.Is(err, ErrLocked):
		result = "locked"
	case errors.Is(err, ErrDenied):
		result = "denied"
	case errors.Is(err, ErrUnavailable):
		result = "unavailable"
	case err != nil && errors.Is(err, ErrAuth):
		result = "bad_credentials"
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		result = "cancelled"
	case err != nil:
		result = "error"
	}
	s.m.logins.WithLabelValues(string(req.Door), result).Inc()
	if err == nil {
		s.logger.Info("login", "door", req.Door, "user", req.Username, "mac", req.MAC, "remote", req.Remote, "result", result)
	} else {
		// A failed login's "user ID" is often a password typed in the wrong field: not logged.
		s.logger.Info("login refused", "door", req.Door, "mac", req.MAC, "remote", req.Remote, "result", result)
	}
	return sess, err
}

func (s *Sessions) login(ctx context.Context, req LoginRequest) (Session, error) {
	if s.ready != nil && !s.ready() {
		return Session{}, fmt.Errorf("login: %w: this node is resynchronising with the others", ErrUnavailable)
	}
	now := s.now()
	mac, _ := NormalizeMAC(req.MAC)
	userKey, devKey := UserObject(strings.ToLower(req.Username)).String(), DeviceObject(mac).String()
	// Attempts in flight count against the limit, so parallel guesses
	// cannot all pass the check before the first failure is recorded. A
	// login that checks no secret (an admin's, a desk phone's own) guesses
	// nothing, and a guesser must not be able to block it.
	doneUser, okUser := func(bool) {}, true
	doneDev, okDev := func(bool) {}, true
	src := sourceHost(req.Remote)
	if !req.Verified {
		// Per user and source (with the user's budget over all sources), so
		// a guesser at one phone locks out only itself there, not the user
		// at every door; per phone, so one phone is not a guessing station.
		doneUser, okUser = s.lockout.TryGuess(userKey, src, now)
		doneDev, okDev = s.lockout.Try(devKey, now)
	}
	defer func() { doneUser(false); doneDev(false) }()
	if !okUser || !okDev {
		return Session{}, ErrLocked
	}
	fail := func() (Session, error) {
		doneUser(true)
		doneDev(true)
		return Session{}, ErrAuth
	}
	dev, err := s.store.GetDevice(ctx, mac)
	if errors.Is(err, ErrNotFound) {
		return fail()
	} else if err != nil {
		return Session{}, err
	}
	if req.Door != DoorAssigned && !req.Privileged && !req.AtDevice && !s.FromDevice(ctx, dev.ID, req.Remote) {
		// A user logs in only at the phone: from elsewhere (the user API, a
		// spoofed User-Agent, a leaked phone-page link) a login would take
		// the phone over and log out whoever is there. Refused before any
		// password is checked, so it neither guesses nor locks anyone out.
		s.m.notAtPhone.WithLabelValues("login").Inc()
		return Session{}, fmt.Errorf("%w: log in on the phone itself", ErrDenied)
	}
	u, err := s.findUser(ctx, req.Username)
	if errors.Is(err, ErrNotFound) {
		// Spend the same time as a real check so timing does not enumerate users.
		if !req.Verified {
			if err := s.hasher.VerifyNobodyContext(ctx, req.Secret); err != nil {
				return Session{}, fmt.Errorf("login: %w", err) // gone before its turn: no guess counted
			}
		}
		return fail()
	} else if err != nil {
		return Session{}, err
	}
	if !req.Verified {
		ok, err := s.hasher.VerifyContext(ctx, u.PasswordHash, req.Secret)
		if err != nil {
			return Session{}, fmt.Errorf("login: %w", err)
		}
		if !ok {
			return fail()
		}
	}
	if u.Status != StatusActive {
		return fail()
	}
	if !req.Verified {
		s.lockout.GuessSucceeded(userKey, src, now)
	}
	if req.Door == DoorNative {
		// The phone re-fetches <user>.cfg with the stored login right after
		// a logout's check-sync; refusing it once makes the logout stick.
		refused, err := s.nativeRefused(ctx, dev.ID, u.ID, now)
		if err != nil {
			return Session{}, fmt.Errorf("login: %w", err)
		}
		if refused {
			return Session{}, fmt.Errorf("%w: logged out on this phone", ErrDenied)
		}
	}
	defer s.slot()()
	defer s.locks.lock(userLockKey(u.ID), deviceLockKey(dev.ID))()
	// The locks and the reads under them go together: on a shared store
	// they are one round trip (issue 16's login CPU figure).
	release, state, err := s.lockLoginState(ctx, u.ID, dev.ID, dev.SiteID)
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrAuth // the user was deleted meanwhile
	} else if err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	defer release()
	site := state.Site
	if site.ID == 0 {
		return Session{}, fmt.Errorf("login: site of %s: %w", mac, ErrNotFound)
	}
	if !site.Login.Enabled && req.Door != DoorAssigned {
		return Session{}, fmt.Errorf("%w: login is disabled at this site", ErrDenied)
	}
	if req.Door != DoorAssigned && site.Login.DefaultOnly && site.Login.DefaultUser != "" && u.Username != site.Login.DefaultUser {
		return Session{}, fmt.Errorf("%w: only the default user may log in here", ErrDenied)
	}
	return s.startLocked(ctx, req, dev, state, now)
}

// lockLoginState takes the cluster's locks of the user and the phone (after
// the node's own) and reads the login's state under them.
func (s *Sessions) lockLoginState(ctx context.Context, userID, deviceID, siteID int64) (func(), LoginState, error) {
	if s.cluster == nil {
		st, err := s.store.LoginState(ctx, userID, deviceID, siteID)
		return func() {}, st, err
	}
	return s.cluster.LockLoginState(ctx, []string{userLockKey(userID), deviceLockKey(deviceID)}, userID, deviceID, siteID)
}

// startLocked applies the one-login-per-user policy, ends the device's
// previous session and starts the new one. state was read under the locks.
func (s *Sessions) startLocked(ctx context.Context, req LoginRequest, dev Device, state LoginState, now time.Time) (Session, error) {
	site := state.Site
	// Read under the lock: a user disabled since the password check
	// (whose sessions EndAll has just ended) must not get a new one.
	u := state.User
	if u.Status != StatusActive {
		return Session{}, ErrAuth
	}
	var mine, onDev []Session
	for _, o := range state.Sessions {
		if o.UserID != u.ID {
			if o.DeviceID == dev.ID {
				onDev = append(onDev, o)
			}
			continue
		}
		if o.DeviceID == dev.ID {
			// Logging in again where one is logged in keeps the session. A
			// native phone re-fetching its profile is not activity.
			if req.Door != DoorNative {
				_ = s.store.TouchSession(ctx, o.ID, now)
			}
			return o, nil
		}
		if o.Door != DoorAssigned {
			mine = append(mine, o)
		}
	}
	policy := site.Login.OnePerUser
	if policy == "" || req.Door == DoorAssigned {
		policy = "replace"
	}
	if req.Door == DoorAssigned {
		// A desk phone of one's own does not log one out elsewhere.
		mine = nil
	}
	if len(mine) > 0 && policy == "deny" {
		return Session{}, fmt.Errorf("%w: already logged in on another phone", ErrDenied)
	}
	if policy == "replace" {
		for _, o := range mine {
			if err := s.endLocked(ctx, o, EndReplaced, req.Actor, true, nil); err != nil {
				return Session{}, err
			}
		}
	}
	// (Ending the user's other sessions left this phone's as they were.)
	// The phone may be registered only with the line of the session this
	// login replaces: the new login's check-sync goes through it.
	reach := reachSet{secrets: map[string]string{}}
	for _, o := range onDev {
		// The new login's check-sync below reloads this phone once; a
		// native login's phone is loading the new profile already, and a
		// NOTIFY would reach it on the line it is dropping.
		if err := s.endLocked(ctx, o, EndReplaced, req.Actor, false, &reach); err != nil {
			return Session{}, err
		}
	}
	sess := Session{
		ID: auth.RandomSecret(12), UserID: u.ID, DeviceID: dev.ID, Door: req.Door, StartedAt: now, LastActivity: now,
		Persistent: site.Login.Persistent || req.Door == DoorAssigned, SIPUser: "s" + auth.RandomSecret(8), SIPPassword: auth.RandomSecret(12),
	}
	actor := req.Actor
	if actor.Remote == "" {
		actor.Remote = req.Remote
	}
	// The session and its audit event in one transaction (one round trip).
	if err := s.store.StartSession(ctx, &sess, NewAuditEvent(s.now(), actor, "session.login", SessionObject(sess.ID), nil,
		struct {
			User   string `json:"user"`
			Device string `json:"device"`
			Door   Door   `json:"door"`
		}{u.Username, dev.MAC, req.Door})); err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	if s.creds != nil {
		s.creds.AddSession(sess, u)
	}
	s.m.active.Inc()
	s.events.Publish(ctx, Event{Kind: EventSessionStarted, DeviceID: dev.ID, UserID: u.ID, SessionID: sess.ID})
	if req.Door != DoorNative {
		// The native door's phone is loading the profile already; the
		// other doors' phones learn of the login only from this NOTIFY.
		s.tell(ctx, dev, false, reach.removed, reach.secrets)
	} else {
		// The phone is loading the profile (it has fetched it): its
		// reload is no reboot.
		s.markSync(ctx, dev.ID, true)
	}
	return sess, nil
}

// findUser accepts a user name or one of the user's numbers, as people
// type either on a phone's keypad.
func (s *Sessions) findUser(ctx context.Context, name string) (User, error) {
	u, err := s.store.GetUser(ctx, name)
	if errors.Is(err, ErrNotFound) && ValidNumber(name) {
		return s.store.UserByNumber(ctx, name)
	}
	return u, err
}

// End ends a session for reason: the one path every logout takes.
func (s *Sessions) End(ctx context.Context, id string, reason EndReason, actor Actor) error {
	// A phone browser that drops its connection must not leave bindings.
	ctx = context.WithoutCancel(ctx)
	sess, err := s.store.GetSession(ctx, id)
	if err != nil {
		return err
	}
	if !sess.Active() {
		return nil
	}
	defer s.slot()()
	defer s.locks.lock(userLockKey(sess.UserID), deviceLockKey(sess.DeviceID))()
	release, err := s.clusterLock(ctx, userLockKey(sess.UserID), deviceLockKey(sess.DeviceID))
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	defer release()
	// Read again under the locks: a login or logout may have ended it.
	if sess, err = s.store.GetSession(ctx, id); err != nil || !sess.Active() {
		return err
	}
	return s.endLocked(ctx, sess, reason, actor, true, nil)
}

// parallelSessionWork is how many logins and logouts run at once: enough
// to overlap one's reads with another's writes, few enough to leave the
// store's writer to the phones too.
const parallelSessionWork = 4

// slot waits for one of the session work slots and returns its release.
func (s *Sessions) slot() func() {
	s.slots <- struct{}{}
	return func() { <-s.slots }
}

// reachSet collects the bindings logouts removed, with the secrets that
// answer the phone's challenge on them, for one check-sync after them.
type reachSet struct {
	removed []Binding
	secrets map[string]string
}

// endLocked ends sess; notify sends the device its check-sync, else keep
// (when set) collects where the phone was, for the caller's check-sync.
func (s *Sessions) endLocked(ctx context.Context, sess Session, reason EndReason, actor Actor, notify bool, keep *reachSet) error {
	start := time.Now()
	owner := SessionOwner(sess.ID)
	// Revoke first: from this instant a REGISTER or call with the
	// session's credentials is refused, whatever happens next.
	if s.creds != nil {
		s.creds.Revoke(owner)
	}
	// Persisting the end may fail; the phone is still unbound and told,
	// and the error is returned so the caller can retry.
	persistErr := s.store.EndSession(ctx, sess.ID, s.now(), reason)
	if errors.Is(persistErr, ErrNotFound) {
		// Another path ended it first (the locks cover its user, not
		// always its phone): that one unbinds, tells and counts.
		return nil
	}
	s.forgetSession(ctx, sess)
	if sess.Door == DoorNative {
		// Kept before any node hears of the end: the phone's re-fetch may
		// reach any node, and one started since.
		if err := s.store.PutNativeLogout(ctx, sess.DeviceID, sess.UserID, s.now()); err != nil {
			s.logger.Error("logout: native logout not kept; the phone's stored login may log in again",
				"component", "sessions", "session", sess.ID, "err", err)
		}
	}
	// Read before the event, which carries it: the assigned-phone rule
	// needs it too (one read per logout fewer).
	dev, derr := s.store.GetDeviceByID(ctx, sess.DeviceID)
	ev := Event{Kind: EventSessionEnded, DeviceID: sess.DeviceID, UserID: sess.UserID, SessionID: sess.ID, Reason: string(reason)}
	if derr == nil {
		ev.Device = &dev
	}
	// Caches drop the logged-in files before the phone is told to re-fetch.
	s.events.Publish(ctx, ev)
	if s.reg != nil {
		// The phone's contacts are captured as they are unbound: while
		// logged in it may hold no other line to be reached through.
		removed, err := s.reg.Unbind(ctx, owner)
		if err != nil {
			s.logger.Error("logout: unbind failed", "session", sess.ID, "err", err)
		}
		s.noteSources(sess.DeviceID, removed)
		// A refresh REGISTER authenticated just before the revocation may
		// land after the unbind; a second sweep shortly after removes it.
		reg := s.reg
		s.timers.AfterFunc(UnbindRecheck, func() {
			if bs, err := reg.Unbind(context.Background(), owner); err == nil && len(bs) > 0 {
				s.logger.Warn("logout: removed a binding that raced the logout", "session", sess.ID, "bindings", len(bs))
			}
		})
		switch {
		case derr == nil && notify:
			s.tell(ctx, dev, false, removed, map[string]string{sess.SIPUser: sess.SIPPassword})
		case keep != nil:
			keep.removed = append(keep.removed, removed...)
			keep.secrets[sess.SIPUser] = sess.SIPPassword
		}
	}
	s.m.unbindDelay.Observe(time.Since(start).Seconds())
	s.m.logouts.WithLabelValues(string(reason)).Inc()
	s.m.active.Dec()
	s.audit(ctx, actor, "session.end", SessionObject(sess.ID), map[string]EndReason{"reason": reason})
	s.logger.Info("logout", "session", sess.ID, "device", dev.MAC, "reason", string(reason))
	if persistErr != nil {
		return fmt.Errorf("logout %s: %w", sess.ID, persistErr)
	}
	return nil
}

// UnbindRecheck is when a logout unbinds a second time, for a REGISTER
// that was in flight while it ran.
const UnbindRecheck = 2 * time.Second

// NativeRefuseWindow is how long after a native session ends the phone's
// automatic re-fetches of <user>.cfg (with the login it stored) are
// refused, so the phone drops the login. A person logging in again on that
// phone within it is refused too and must retry a little later.
const NativeRefuseWindow = 30 * time.Second

// nativeRefused reports a recent end of a native session of user on
// device, from the store: the session may have ended on another node, or
// before this node started. One indexed read, on native logins only.
func (s *Sessions) nativeRefused(ctx context.Context, deviceID, userID int64, now time.Time) (bool, error) {
	at, err := s.store.NativeLogoutAt(ctx, deviceID, userID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return now.Sub(at) < NativeRefuseWindow, nil
}

// pruneCold forgets the native logouts whose refusal window has passed
// (most phones never ask again) and the held check-syncs no node sent
// within SyncPendingMax (their phone registered nowhere since).
func (s *Sessions) pruneCold(ctx context.Context, now time.Time) {
	if err := s.store.PruneNativeLogouts(ctx, now.Add(-NativeRefuseWindow)); err != nil {
		s.logger.Warn("sweep: native logouts not pruned", "component", "sessions", "err", err)
	}
	if err := s.store.PruneHeldSyncs(ctx, s.wall().Add(-SyncPendingMax)); err != nil {
		s.logger.Warn("sweep: held check-syncs not pruned", "component", "sessions", "err", err)
	}
}

// GuardUser starts a password check for username from remote on a door
// that verifies it itself (HTTP digest), under the same lockout as Login;
// done(false) says the password was right.
func (s *Sessions) GuardUser(username, remote string) (done func(failed bool), ok bool) {
	key, src, now := UserObject(strings.ToLower(username)).String(), sourceHost(remote), s.now()
	inner, ok := s.lockout.TryGuess(key, src, now)
	if !ok {
		return inner, false
	}
	return func(failed bool) {
		inner(failed)
		if !failed {
			s.lockout.GuessSucceeded(key, src, now)
		}
	}, true
}

// sourceHost is the address of a "host:port" remote (the lockout key of
// its source); other forms are kept as they are.
func sourceHost(remote string) string {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().String()
	}
	return remote
}

// Touch records activity on a session (a call, a login-page request).
func (s *Sessions) Touch(ctx context.Context, id string) error {
	return s.store.TouchSession(ctx, id, s.now())
}

// ActiveOn returns the session active on a device, if any.
func (s *Sessions) ActiveOn(ctx context.Context, deviceID int64) (Session, bool, error) {
	ss, err := s.store.ListSessions(ctx, SessionQuery{DeviceID: deviceID, ActiveOnly: true, Limit: 1})
	if err != nil || len(ss) == 0 {
		return Session{}, false, err
	}
	return ss[0], true, nil
}

// activeOn is ActiveOn through the active-session cache, when there is one
// (the registrar's event path: every new phone's first registration asks,
// 2 of its ~12 statements in a boot storm). On a cluster another node's
// session reaches the cache only with its relayed event: read the store.
func (s *Sessions) activeOn(ctx context.Context, deviceID int64) (Session, bool, error) {
	if s.activeCache == nil || s.cluster != nil {
		return s.ActiveOn(ctx, deviceID)
	}
	return s.activeCache.ActiveOn(ctx, deviceID, s.ActiveOn)
}

// ActiveCache keeps the devices' active sessions as the store last
// answered, each until a session event about its device (this node's, or
// another node's relayed one): files.Cache, which the fetches fill.
type ActiveCache interface {
	// ActiveOn returns the device's cached active session (ok false:
	// none), or read's answer, kept.
	ActiveOn(ctx context.Context, deviceID int64,
		read func(context.Context, int64) (Session, bool, error)) (Session, bool, error)
}

// EndAll ends every active session of a user (disable, password change).
func (s *Sessions) EndAll(ctx context.Context, userID int64, reason EndReason, actor Actor) error {
	ctx = context.WithoutCancel(ctx)
	// The user's lock across list and ends: a login that passed its
	// status check just before the user was disabled either finishes
	// first (and its session is listed here) or waits and is refused.
	defer s.slot()()
	defer s.locks.lock(userLockKey(userID))()
	ss, err := s.store.ListSessions(ctx, SessionQuery{UserID: userID, ActiveOnly: true})
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range ss {
		errs = append(errs, s.endLocked(ctx, o, reason, actor, true, nil))
	}
	return errors.Join(errs...)
}

// Sweep ends sessions that are idle past the site's automaticLogout, older
// than its maximum length, or past its daily logout time.
func (s *Sessions) Sweep(ctx context.Context) error {
	now := s.now()
	s.pruneCold(ctx, now)
	ss, err := s.store.ListSessions(ctx, SessionQuery{ActiveOnly: true})
	if err != nil {
		return err
	}
	if s.cluster != nil {
		// Other nodes log in and out too: the count is the store's.
		s.m.active.Set(float64(len(ss)))
	}
	sites := map[int64]Site{}
	for _, sess := range ss {
		dev, err := s.store.GetDeviceByID(ctx, sess.DeviceID)
		if err != nil {
			continue
		}
		site, ok := sites[dev.SiteID]
		if !ok {
			if site, err = s.store.GetSite(ctx, dev.SiteID); err != nil {
				continue
			}
			sites[dev.SiteID] = site
		}
		if sess.Door == DoorAssigned {
			s.sweepLinesDown(ctx, sess.DeviceID, now)
			continue
		}
		loc, err := time.LoadLocation(site.TimeZone)
		if err != nil || site.TimeZone == "" {
			loc = time.Local
		}
		s.sweepLinesDown(ctx, sess.DeviceID, now)
		if reason := expiry(site.Login, loc, sess, now); reason != "" {
			if err := s.endExpired(ctx, sess.ID, site.Login, loc, now); err != nil {
				s.logger.Error("sweep: end session", "session", sess.ID, "err", err)
			}
		}
	}
	return nil
}

// expiry says why a session must end now, or "".
func expiry(p LoginPolicy, loc *time.Location, s Session, now time.Time) EndReason {
	if p.AutomaticLogout > 0 && now.Sub(s.LastActivity) >= time.Duration(p.AutomaticLogout)*time.Minute {
		return EndIdle
	}
	if p.MaxSessionMinutes > 0 && now.Sub(s.StartedAt) >= time.Duration(p.MaxSessionMinutes)*time.Minute {
		return EndMaxLength
	}
	if h, m, ok := parseHHMM(p.DailyLogout); ok {
		now := now.In(loc)
		cut := time.Date(now.Year(), now.Month(), now.Day(), h, m, 0, 0, loc)
		if now.Before(cut) {
			cut = cut.AddDate(0, 0, -1)
		}
		if s.StartedAt.Before(cut) {
			return EndDaily
		}
	}
	return ""
}

func parseHHMM(s string) (int, int, bool) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	h, err1 := strconv.Atoi(hs)
	m, err2 := strconv.Atoi(ms)
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, 0, false
	}
	return h, m, true
}

// endExpired ends a session the sweep found expired, after checking again
// under the lock: activity since the sweep read the list keeps it.
func (s *Sessions) endExpired(ctx context.Context, id string, p LoginPolicy, loc *time.Location, now time.Time) error {
	sess, err := s.store.GetSession(ctx, id)
	if err != nil || !sess.Active() {
		return err
	}
	defer s.slot()()
	defer s.locks.lock(userLockKey(sess.UserID), deviceLockKey(sess.DeviceID))()
	if sess, err = s.store.GetSession(ctx, id); err != nil || !sess.Active() {
		return err
	}
	reason := expiry(p, loc, sess, now)
	if reason == "" {
		return nil
	}
	return s.endLocked(ctx, sess, reason, Actor{}, true, nil)
}

// Close stops the delayed work Sessions scheduled (a deferred check-sync,
// the second unbind after a logout) and waits for what is running.
func (s *Sessions) Close() { s.timers.Close() }

// RunSweeper sweeps every interval until ctx ends.
func (s *Sessions) RunSweeper(ctx context.Context, interval time.Duration) error {
	return runEvery(ctx, interval, s.logger, "session sweep", s.Sweep)
}

func (s *Sessions) audit(ctx context.Context, actor Actor, action string, o Object, after any) {
	if err := s.store.AddAudit(ctx, NewAuditEvent(s.now(), actor, action, o, nil, after)); err != nil {
		s.logger.Error("audit write failed", "action", action, "err", err)
	}
}

// FromDevice reports whether remote (an address, with or without port) is
// an address the device is registered from: the phone itself, as a SIP
// REGISTER authenticated it there. HTTP arrives over TCP, so its source
// address cannot be spoofed the way a UDP packet's can.
func (s *Sessions) FromDevice(ctx context.Context, deviceID int64, remote string) bool {
	addr, ok := hostAddr(remote)
	if !ok || s.reg == nil {
		return false
	}
	for _, b := range s.anywhere(ctx, deviceID) {
		if a, ok := hostAddr(b.Source); ok && a == addr {
			return true
		}
	}
	s.devMu.Lock()
	defer s.devMu.Unlock()
	u, ok := s.unbound[deviceID]
	if !ok || s.now().Sub(u.at) > unboundGrace {
		return false
	}
	for _, a := range u.addrs {
		if a == addr {
			return true
		}
	}
	return false
}

// unboundGrace is how long a phone whose lines a logout removed counts as
// still at their addresses: the time it takes to re-provision and register.
const unboundGrace = 2 * time.Minute

type unboundFrom struct {
	addrs []netip.Addr
	at    time.Time
}

// noteSources remembers where the removed bindings of a device came from.
func (s *Sessions) noteSources(deviceID int64, removed []Binding) {
	var addrs []netip.Addr
	for _, b := range removed {
		if a, ok := hostAddr(b.Source); ok {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return
	}
	s.devMu.Lock()
	defer s.devMu.Unlock()
	// One entry per device, replaced each time: bounded by the devices.
	s.unbound[deviceID] = unboundFrom{addrs: addrs, at: s.now()}
}

// hostAddr is the IP address in "ip", "ip:port" or "[ip]:port".
func hostAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// EndOnPhone ends the session on the device for a logout the phone's own
// page asks for, only when remote is the phone itself: a page link read
// elsewhere must not log out whoever is at the phone. It reports whether
// a session was ended; ErrDenied when remote is not the phone.
func (s *Sessions) EndOnPhone(ctx context.Context, deviceID int64, remote string, actor Actor) (bool, error) {
	if !s.FromDevice(ctx, deviceID, remote) {
		s.m.notAtPhone.WithLabelValues("logout").Inc()
		s.logger.Info("phone-page logout refused: not from the phone", "device_id", deviceID, "remote", remote)
		return false, fmt.Errorf("%w: log out on the phone itself", ErrDenied)
	}
	sess, ok, err := s.ActiveOn(ctx, deviceID)
	if err != nil || !ok {
		return false, err
	}
	return true, s.End(ctx, sess.ID, EndLogout, actor)
}

// EMResult is what a Cisco MPP Extension Mobility fetch turned out to be.
type EMResult int

const (
	// EMLoggedIn: the typed user is logged in on the phone (a new login,
	// or the session the phone's rule already carries).
	EMLoggedIn EMResult = iota + 1
	// EMStale: the phone re-synced with the login of a session that has
	// ended (an admin's logout, *78, a reboot, a timer): it gets its
	// device's profile, and the login stays ended.
	EMStale
)

// ExtensionMobility decides a Cisco MPP Extension Mobility fetch, in which
// the phone's Profile_Rule sent the user ID and password typed at its Sign
// in softkey (verified by the caller, as the native door's) and the token
// of the session its profile came with. The phone keeps that login until
// the user signs out on it, and re-syncs with it after every NOTIFY: a
// token naming an ended session of that user on that phone is that stale
// login, never a new one. Any other fetch logs the user in (lockout,
// audit, door native).
func (s *Sessions) ExtensionMobility(ctx context.Context, mac, username, token, remote string) (EMResult, error) {
	dev, err := s.store.GetDevice(ctx, mac)
	if err != nil {
		return 0, fmt.Errorf("extension mobility: %w", err)
	}
	if id, ok := EMSessionOf(dev, token); ok {
		sess, err := s.store.GetSession(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return 0, fmt.Errorf("extension mobility: %w", err)
		}
		if err == nil && sess.DeviceID == dev.ID {
			if u, err := s.store.GetUserByID(ctx, sess.UserID); err == nil && u.Username == username {
				if sess.Active() {
					// The session this phone's profile came with: a re-sync
					// (or the boot of a phone still signed in), not a login.
					return EMLoggedIn, nil
				}
				s.m.emStale.Inc()
				s.logger.Info("extension mobility: the phone still holds an ended login; not logged in again",
					"component", "sessions", "mac", mac, "user", username, "session", sess.ID, "reason", sess.EndReason)
				return EMStale, nil
			}
		}
	}
	if _, err := s.Login(ctx, LoginRequest{MAC: mac, Username: username, Door: DoorNative, Verified: true,
		Remote: remote, Actor: UserActor(username, remote)}); err != nil {
		return 0, err
	}
	return EMLoggedIn, nil
}

// EMSignedOut ends the Extension Mobility session on d: its phone fetched
// its profile through the rule's signed-out branch, with the device's own
// credentials, so the user signed out on the phone (or its
// Session_Timer_m_ did).
func (s *Sessions) EMSignedOut(ctx context.Context, d Device) error {
	return s.emSignedOut(ctx, d, func(ctx context.Context) (Session, bool, error) { return s.ActiveOn(ctx, d.ID) })
}

// emSignedOut is EMSignedOut with the device's active session from active.
func (s *Sessions) emSignedOut(ctx context.Context, d Device, active func(context.Context) (Session, bool, error)) error {
	sess, ok, err := active(ctx)
	if err == nil && ok && sess.Door == DoorNative {
		err = s.End(ctx, sess.ID, EndLogout, PhoneActor(""))
	}
	// The phone holds no login now: signing in again at once is a new
	// login, not the re-fetch a logout's refusal window is for, on any
	// node. (The store reads before it writes: every signed-out boot
	// fetch comes here.)
	if cerr := s.store.ClearNativeLogouts(ctx, d.ID); cerr != nil {
		err = errors.Join(err, fmt.Errorf("extension mobility sign-out: %w", cerr))
	}
	return err
}
