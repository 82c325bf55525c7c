package handset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/sipua"
)

// line is one configured registration line (reg.N).
type line struct {
	index  int
	acct   sipua.Account // fixed for the line's life: a change makes a new line
	server string
	reg    *sipua.Registration
	// guarded by Handset.mu
	registered bool
	expires    int
	due        time.Time // next refresh (or retry when not registered)
}

// Line is a snapshot of one configured line.
type Line struct {
	Index      int
	Acct       sipua.Account
	CallID     string
	Registered bool
	// Expires is what the registrar granted at the last REGISTER.
	Expires int
}

// EventKind says what a handset did.
type EventKind int

const (
	// EvNotify: a check-sync NOTIFY was accepted (after its challenge).
	EvNotify EventKind = iota + 1
	// EvNotifyRefused: a NOTIFY's credentials were refused (403).
	EvNotifyRefused
	// EvApplied: a re-fetch after check-sync ended and its line diff was
	// applied (Err says what failed, if anything).
	EvApplied
)

func (k EventKind) String() string {
	switch k {
	case EvNotify:
		return "notify"
	case EvNotifyRefused:
		return "notify_refused"
	case EvApplied:
		return "applied"
	}
	return "unknown"
}

// Event is something the handset did on its own.
type Event struct {
	Kind EventKind
	// At is when the NOTIFY was accepted or refused, or when the applied
	// lines were all registered (or failed).
	At time.Time
	// Name is the NOTIFY's Event header; User the line it was addressed to.
	Name, User string
	// Reboot: the check-sync rebooted the phone.
	Reboot bool
	// Fetch and Register time an EvApplied: the file fetch, then the
	// un-REGISTERs and REGISTERs of the line diff.
	Fetch, Register time.Duration
	// Lines are the configured lines after an EvApplied.
	Lines []Line
	Err   error
}

// Stats counts what a handset did.
type Stats struct {
	// Resyncs are check-syncs acted on, Reboots those that rebooted.
	Resyncs, Reboots int64
	// Unregisters are un-REGISTERs (Expires: 0) of lines dropped;
	// UnregRefused those answered 401/403 (normal: the credentials of a
	// logged-out session are already revoked).
	Unregisters, UnregRefused int64
	// RefreshFails are background refreshes that failed.
	RefreshFails int64
	SIP          sipua.Stats
}

// Stats returns the counters so far.
func (h *Handset) Stats() Stats {
	s := Stats{Resyncs: h.resyncs.Load(), Reboots: h.reboots.Load(), Unregisters: h.unregisters.Load(),
		UnregRefused: h.unregRefused.Load(), RefreshFails: h.refreshFails.Load()}
	if h.ua != nil {
		s.SIP = h.ua.Stats()
	}
	return s
}

// Events delivers what the handset does on its own (check-sync NOTIFYs
// and their re-fetches). Events are dropped when nobody reads.
func (h *Handset) Events() <-chan Event { return h.events }

// DrainEvents forgets the events so far.
func (h *Handset) DrainEvents() {
	for {
		select {
		case <-h.events:
		default:
			return
		}
	}
}

func (h *Handset) emit(e Event) {
	select {
	case h.events <- e:
	default:
	}
}

// Lines returns the configured lines in line order.
func (h *Handset) Lines() []Line {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Line, 0, len(h.lines))
	for _, l := range h.lines {
		out = append(out, Line{Index: l.index, Acct: l.acct, CallID: l.reg.CallID(), Registered: l.registered,
			Expires: l.expires})
	}
	slices.SortFunc(out, func(a, b Line) int { return a.Index - b.Index })
	return out
}

// lineCreds finds the configured line whose AOR user is user (the UA's
// request validation).
func (h *Handset) lineCreds(user string) (string, string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.lines {
		if l.acct.User == user {
			return l.acct.AuthUser, l.acct.Password, true
		}
	}
	return "", "", false
}

// configured is the set of lines the last fetched files carry.
func (h *Handset) configured() (map[int]*line, error) {
	want := map[int]*line{}
	for _, a := range h.cfg.Vendor.accounts(h.Params()) {
		acct, server, err := h.account(a)
		if err != nil {
			return nil, err
		}
		want[a.Line] = &line{index: a.Line, acct: acct, server: server}
	}
	return want, nil
}

// Start boots the phone: it fetches the master file and the files it
// lists, binds its SIP socket(s), registers every configured line and
// from then on runs on its own until Close or ctx ends. The returned event
// times the boot's fetch and registrations. A configuration without any
// line is an error (no_account).
func (h *Handset) Start(ctx context.Context) (Event, error) {
	if h.started {
		return Event{}, errors.New("handset: started twice")
	}
	h.started = true
	e := Event{Kind: EvApplied, Name: "boot", Reboot: true}
	t := time.Now()
	if _, err := h.Boot(ctx); err != nil {
		e.Err = err
		return e, err
	}
	e.Fetch = time.Since(t)
	want, err := h.configured()
	if err == nil && len(want) == 0 {
		err = kerr("no_account", errors.New("the configuration has no line"))
	}
	if err != nil {
		e.Err = err
		return e, err
	}
	first := want[slices.Min(keys(want))]
	if _, err := h.newUA(first.server, first.acct.Domain); err != nil {
		e.Err = err
		return e, err
	}
	t = time.Now()
	err = h.apply(ctx, want)
	e.Register, e.At, e.Lines, e.Err = time.Since(t), time.Now(), h.Lines(), err
	lctx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	h.wg.Add(1)
	go h.loop(lctx)
	return e, err
}

// loop is the phone's own life: NOTIFYs and registration refreshes.
func (h *Handset) loop(ctx context.Context) {
	defer h.wg.Done()
	timer := time.NewTimer(h.untilDue())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-h.ua.Events():
			if ev.Method != "NOTIFY" {
				break
			}
			if ev.Refused {
				h.emit(Event{Kind: EvNotifyRefused, At: ev.At, Name: ev.Name, User: ev.User})
				break
			}
			reboot, ok := h.cfg.Vendor.onEvent(ev.Name, h.Params())
			if !ok {
				break
			}
			h.emit(Event{Kind: EvNotify, At: ev.At, Name: ev.Name, User: ev.User})
			h.emit(h.resync(ctx, ev.Name, reboot || h.cfg.RebootOnCheckSync))
		case <-timer.C:
			h.refreshDue(ctx)
		}
		timer.Reset(h.untilDue())
	}
}

// checkSync parses an Event header: whether it is check-sync, and whether
// it carries reboot=true.
func checkSync(ev string) (reboot, ok bool) {
	parts := strings.Split(ev, ";")
	if !strings.EqualFold(strings.TrimSpace(parts[0]), "check-sync") {
		return false, false
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "reboot") && strings.EqualFold(strings.Trim(strings.TrimSpace(v), `"`), "true") {
			reboot = true
		}
	}
	return reboot, true
}

// Resync acts on a re-provisioning NOTIFY as the loop does when one
// arrives (for a caller that simulates the NOTIFY itself).
func (h *Handset) Resync(ctx context.Context, reboot bool) Event {
	return h.resync(ctx, h.cfg.Vendor.NotifyEvent, reboot || h.cfg.RebootOnCheckSync)
}

// resync re-fetches the files (master file first) and applies the line
// diff; a reboot first un-REGISTERs every line and then registers every
// configured line anew.
func (h *Handset) resync(ctx context.Context, name string, reboot bool) Event {
	h.op.Lock()
	defer h.op.Unlock()
	h.resyncs.Add(1)
	e := Event{Kind: EvApplied, Name: name, Reboot: reboot}
	var errs []error
	if reboot {
		h.reboots.Add(1)
		errs = append(errs, h.drop(ctx, h.take(func(*line) bool { return true })))
	}
	t := time.Now()
	_, err := h.Boot(ctx)
	e.Fetch = time.Since(t)
	var want map[int]*line
	if err == nil {
		want, err = h.configured()
	}
	if err != nil {
		// A phone that cannot fetch keeps the configuration it has.
		e.At, e.Lines, e.Err = time.Now(), h.Lines(), errors.Join(append(errs, err)...)
		return e
	}
	t = time.Now()
	errs = append(errs, h.apply(ctx, want))
	e.Register, e.At, e.Lines, e.Err = time.Since(t), time.Now(), h.Lines(), errors.Join(errs...)
	return e
}

// take removes the lines for which gone is true and returns them.
func (h *Handset) take(gone func(*line) bool) []*line {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*line
	for _, idx := range keys(h.lines) {
		if l := h.lines[idx]; gone(l) {
			out = append(out, l)
			delete(h.lines, idx)
		}
	}
	return out
}

// drop un-REGISTERs lines that left the configuration, with their old
// Call-ID and credentials. A 401/403 answer is normal (the daemon revoked
// a logged-out session's credentials and removed its binding already);
// other failures are returned, after trying every line.
func (h *Handset) drop(ctx context.Context, lines []*line) error {
	var errs []error
	for _, l := range lines {
		h.mu.Lock()
		was := l.registered
		l.registered = false
		h.mu.Unlock()
		if !was {
			continue
		}
		h.unregisters.Add(1)
		_, err := h.ua.Register(ctx, l.reg, 0)
		switch {
		case err == nil:
		case sipua.Refused(err):
			h.unregRefused.Add(1)
		default:
			errs = append(errs, &Error{Kind: "unregister_" + Kind(err), Err: fmt.Errorf("un-REGISTER line %d: %w", l.index, err)})
		}
	}
	return errors.Join(errs...)
}

// apply makes want the configured lines: lines that left or whose account
// changed are un-REGISTERed (drop), new ones registered with a fresh
// Call-ID, unchanged ones refreshed with theirs.
func (h *Handset) apply(ctx context.Context, want map[int]*line) error {
	old := h.take(func(l *line) bool { w, ok := want[l.index]; return !ok || !l.same(w) })
	errs := []error{h.drop(ctx, old)}
	h.mu.Lock()
	for idx, w := range want {
		if _, ok := h.lines[idx]; !ok {
			w.reg = sipua.NewRegistration(w.acct)
			h.lines[idx] = w
		}
	}
	order := keys(h.lines)
	cur := make([]*line, len(order))
	for i, idx := range order {
		cur[i] = h.lines[idx]
	}
	h.mu.Unlock()
	for _, l := range cur {
		errs = append(errs, h.register(ctx, l))
	}
	return errors.Join(errs...)
}

func (l *line) same(w *line) bool { return l.acct == w.acct && l.server == w.server }

// retryAfter is when a line whose REGISTER failed is tried again
// (reg.x.server.y.registerRetry.baseTimeOut).
const retryAfter = 60 * time.Second

// register REGISTERs one line and schedules its refresh.
func (h *Handset) register(ctx context.Context, l *line) error {
	res, err := h.ua.Register(ctx, l.reg, h.cfg.Expires)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		l.registered, l.expires, l.due = false, 0, time.Now().Add(retryAfter)
		return fmt.Errorf("register line %d (%s): %w", l.index, l.acct.User, err)
	}
	l.registered, l.expires = res.Expires > 0, res.Expires
	l.due = time.Now().Add(refreshIn(res.Expires))
	if !l.registered {
		l.due = time.Now().Add(retryAfter)
	}
	return nil
}

// refreshIn is when a registration granted for expires seconds is
// refreshed: a minute before it runs out
// (reg.x.server.y.expires.overlap=60), or at half of it when that is short.
func refreshIn(expires int) time.Duration {
	if expires > 120 {
		return time.Duration(expires-60) * time.Second
	}
	return time.Duration(max(expires, 1)) * time.Second / 2
}

// Refresh re-REGISTERs every configured line now (a line that left the
// configuration is never refreshed).
func (h *Handset) Refresh(ctx context.Context) error {
	h.op.Lock()
	defer h.op.Unlock()
	var errs []error
	for _, l := range h.current() {
		errs = append(errs, h.register(ctx, l))
	}
	return errors.Join(errs...)
}

// current is the configured lines in line order.
func (h *Handset) current() []*line {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*line, 0, len(h.lines))
	for _, idx := range keys(h.lines) {
		out = append(out, h.lines[idx])
	}
	return out
}

// refreshDue refreshes the lines whose time has come.
func (h *Handset) refreshDue(ctx context.Context) {
	h.op.Lock()
	defer h.op.Unlock()
	now := time.Now()
	for _, l := range h.current() {
		h.mu.Lock()
		due := !l.due.After(now)
		h.mu.Unlock()
		if due && h.register(ctx, l) != nil {
			h.refreshFails.Add(1)
		}
	}
}

// untilDue is the time to the next refresh (an hour when none).
func (h *Handset) untilDue() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := time.Hour
	for _, l := range h.lines {
		d = min(d, time.Until(l.due))
	}
	return max(d, 0)
}

func keys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
