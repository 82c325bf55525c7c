package prov

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"
)

// Registrar is what sessions need from the SIP side; daemon adapts sip.Server.
type Registrar interface {
	// Unbind removes every binding owner created and returns them, so the
	// caller still knows where the phone was after the unbind.
	Unbind(ctx context.Context, owner Owner) ([]Binding, error)
	// DeviceBindings returns the live bindings that reach the device,
	// whichever credential made them (Binding.DeviceID).
	DeviceBindings(ctx context.Context, deviceID int64) []Binding
	// CheckSync sends the re-sync NOTIFY (Event: event, the phone's
	// vendor's: check-sync, resync…) to the phone behind b. password
	// answers the phone's digest challenge for b.AuthUser; "" leaves it to
	// the registrar's live credential. It must not wait for the phone.
	CheckSync(ctx context.Context, b Binding, password string, event string) error
}

// How a handset is found: every binding carries the device of
// the credential that made it, so a phone is reached through whichever
// line it keeps registered — its device account while locked, a session's
// line while someone is logged in (it drops the device account then), or
// the permanent account on a third-party phone. A logout captures the
// session's bindings as it unbinds them and tells the phone through them,
// answering its challenge with the session's own (revoked) password; when
// the phone has removed every line itself, the binding it removed last is
// kept in DeviceSignals.Reach.

// BindingChange says what happened to a binding, as the registrar reports it.
type BindingChange int

// Binding changes.
const (
	LineRegistered   BindingChange = iota + 1 // a new binding
	LineRefreshed                             // re-registered (same contact)
	LineUnregistered                          // the phone removed it (Expires: 0)
	LineExpired                               // not refreshed in time
	LineUnbound                               // removed by a logout or unassignment
)

// reachTarget is one address of a phone and the secret its challenge takes.
type reachTarget struct {
	b        Binding
	password string
}

// tell sends check-sync to the phone d: once per address it is registered
// from, through any of its lines, the bindings a logout just removed, or —
// when the phone holds none — the one it removed last. secrets maps a
// digest username to the password that answers the phone's challenge on
// that line when the registrar no longer knows it.
//
// Two NOTIFYs must not overlap: one sent a moment ago that the phone has
// not fetched for is enough (its fetch renders what is true now), and one
// that reaches a phone applying the previous one would land on a line it
// is dropping, so it waits until the phone has registered its new
// configuration (at most syncSettle).
func (s *Sessions) tell(ctx context.Context, d Device, reboot bool, removed []Binding, secrets map[string]string) {
	if s.reg == nil || d.ID == 0 {
		return
	}
	live := s.reg.DeviceBindings(ctx, d.ID)
	captured := s.captured(d, removed, secrets)
	if !reboot {
		if sig, err := s.signals(ctx, d.ID); err == nil && !sig.SyncAt.IsZero() {
			now := s.wall()
			switch {
			// A logout's check-sync (lines removed, their secrets in hand) is
			// never coalesced: the one it would join may fail (the phone
			// challenges it through a line whose credential the logout has
			// just revoked), and then nothing would tell the phone.
			case len(removed) == 0 && len(secrets) == 0 && sig.SyncFetchedAt.IsZero() && now.Sub(sig.SyncAt) >= 0 && now.Sub(sig.SyncAt) < s.coalesce:
				s.m.checkSync.WithLabelValues("coalesced").Inc()
				return
			case applying(sig.SyncFetchedAt, append(live, removed...), now):
				// (a logout's lines were just unbound: they count too)
				s.deferSync(ctx, d.ID, captured, secrets, len(live) > 0 || len(captured) > 0)
				return
			}
		}
	}
	s.send(ctx, d, s.targets(ctx, d, live, captured, secrets), reboot, removed == nil && secrets == nil)
}

// applying reports a phone that fetched its files at fetched and has
// registered nothing since: it is applying them, for at most syncSettle.
func applying(fetched time.Time, live []Binding, now time.Time) bool {
	if fetched.IsZero() || now.Sub(fetched) >= syncSettle || now.Sub(fetched) < 0 {
		return false
	}
	for _, b := range live {
		if !b.UpdatedAt.Before(fetched) {
			return false
		}
	}
	return true
}

// captured turns the bindings a logout removed into targets with the
// password that answers the phone's challenge on them.
func (s *Sessions) captured(d Device, removed []Binding, secrets map[string]string) []reachTarget {
	var out []reachTarget
	for _, b := range removed {
		out = addTarget(out, reachTarget{b: b, password: s.secretOf(d, b.AuthUser, secrets)})
	}
	return out
}

// secretOf is the password of a line's digest username: one a logout
// captured, else the live credential's (taken now: a logout may revoke it
// before the phone's challenge comes back).
func (s *Sessions) secretOf(d Device, authUser string, secrets map[string]string) string {
	if authUser == d.SIPUser && d.SIPUser != "" {
		return d.SIPPassword
	}
	if pw := secrets[authUser]; pw != "" {
		return pw
	}
	if s.creds != nil {
		if cr, ok := s.creds.Lookup(authUser); ok {
			return cr.Password
		}
	}
	return ""
}

// targets lists one binding per address of the phone — the live ones
// first, then those a logout captured, then, when there are none, the one
// the phone removed last — with the password each one's challenge takes.
func (s *Sessions) targets(ctx context.Context, d Device, live []Binding, captured []reachTarget, secrets map[string]string) []reachTarget {
	var out []reachTarget
	for _, b := range live {
		out = addTarget(out, reachTarget{b: b, password: s.secretOf(d, b.AuthUser, secrets)})
	}
	for _, t := range captured {
		out = addTarget(out, t)
	}
	if len(out) == 0 {
		if sig, err := s.signals(ctx, d.ID); err == nil && sig.Reach != nil {
			out = addTarget(out, reachTarget{b: *sig.Reach, password: s.secretOf(d, sig.Reach.AuthUser, secrets)})
		}
	}
	return out
}

// addTarget appends t unless the phone's address is there already (then
// it only lends its password to one that has none).
func addTarget(ts []reachTarget, t reachTarget) []reachTarget {
	key := func(b Binding) string {
		if b.Source == "" {
			return b.Transport + "|" + b.Contact
		}
		return b.Transport + "|" + b.Source
	}
	for i, o := range ts {
		if key(o.b) == key(t.b) {
			if o.password == "" && t.password != "" {
				ts[i] = t
			}
			return ts
		}
	}
	return append(ts, t)
}

// send notes the check-sync, then sends the NOTIFYs: noted first, so the
// phone's fetch (which can follow the NOTIFY at once) finds it pending.
// With no target there is nothing to note: a phone not registered yet
// fetches everything when it boots.
func (s *Sessions) send(ctx context.Context, d Device, targets []reachTarget, reboot, quiet bool) {
	if len(targets) == 0 && s.heldElsewhere(ctx, d.ID) {
		// Another node holds the phone's lines: that node tells it, on
		// the relayed event (prov/sessions_cluster.go).
		s.m.checkSync.WithLabelValues("elsewhere").Inc()
		s.logger.Debug("check-sync left to the node holding the phone", "component", "sessions", "mac", d.MAC)
		return
	}
	if len(targets) == 0 {
		s.m.checkSync.WithLabelValues("unreachable").Inc()
		if quiet {
			s.logger.Debug("check-sync not sent: the phone holds no registration", "component", "sessions", "mac", d.MAC)
		} else {
			s.logger.Warn("check-sync not sent: the phone holds no registration", "component", "sessions", "mac", d.MAC)
		}
		return
	}
	s.markSync(ctx, d.ID, false)
	event := s.syncEvent(d.Vendor, reboot)
	for _, t := range targets {
		if err := s.reg.CheckSync(ctx, t.b, t.password, event); err != nil {
			s.m.checkSync.WithLabelValues("dropped").Inc()
			s.logger.Warn("check-sync not sent", "component", "sessions", "mac", d.MAC, "err", err)
			continue
		}
		s.m.checkSync.WithLabelValues("sent").Inc()
	}
}

// syncSettle bounds how long a check-sync waits for the phone to finish
// applying the previous one.
const syncSettle = 5 * time.Second

// heldSync is a check-sync waiting for the phone to finish applying the
// previous one, with the lines a logout captured meanwhile.
type heldSync struct {
	captured []reachTarget
	secrets  map[string]string
	due      time.Time
	// stored: the store has it too (HeldSync under this node's name).
	stored bool
}

// deferSync keeps a check-sync until the phone has registered the
// configuration it is applying (flushDeferred), or syncSettle has passed.
// A node that can reach the phone (it holds a line of it, or a logout
// captured one) also keeps it in the store: if this node dies, the node
// the phone registers with next sends it, and if it restarts, it does.
func (s *Sessions) deferSync(ctx context.Context, deviceID int64, captured []reachTarget, secrets map[string]string, reachable bool) {
	s.m.checkSync.WithLabelValues("deferred").Inc()
	defer s.heldLocks.lock(deviceLockKey(deviceID))()
	s.devMu.Lock()
	h, waiting := s.deferred[deviceID]
	for _, t := range captured {
		h.captured = addTarget(h.captured, t)
	}
	for k, v := range secrets {
		if h.secrets == nil {
			h.secrets = map[string]string{}
		}
		h.secrets[k] = v
	}
	if !waiting {
		h.due = s.wall().Add(syncSettle)
	}
	s.deferred[deviceID] = h
	s.devMu.Unlock()
	s.logger.Debug("check-sync held: the phone is applying the last one", "component", "sessions",
		"device", deviceID, "captured", len(captured), "waiting", waiting)
	if reachable || h.stored {
		hs := HeldSync{DeviceID: deviceID, Node: s.node, Due: h.due, Secrets: h.secrets}
		for _, t := range h.captured {
			hs.Targets = append(hs.Targets, HeldTarget{Binding: t.b, Password: t.password})
		}
		if err := s.store.HoldSync(context.WithoutCancel(ctx), hs); err != nil {
			s.logger.Error("held check-sync not stored; it goes with this node", "component", "sessions",
				"device", deviceID, "err", err)
		} else if !h.stored {
			s.devMu.Lock()
			if cur, ok := s.deferred[deviceID]; ok {
				cur.stored = true
				s.deferred[deviceID] = cur
			}
			s.devMu.Unlock()
		}
	}
	if waiting {
		return
	}
	s.armHeld(deviceID, syncSettle)
}

// armHeld sends the device's held check-sync after d.
func (s *Sessions) armHeld(deviceID int64, d time.Duration) {
	s.timers.AfterFunc(d, func() { s.flushDeferred(context.Background(), deviceID, false) })
}

// resumeHeld takes up the check-syncs this node held when it stopped: the
// phone's next registration here sends them, else their timer, syncSettle
// after the start (this runs before the SIP listeners serve; a phone that
// was applying has registered by then).
func (s *Sessions) resumeHeld(ctx context.Context) error {
	hs, err := s.store.HeldSyncsOf(ctx, s.node)
	if err != nil {
		return err
	}
	now := s.wall()
	for _, x := range hs {
		if now.Sub(x.Due) > SyncPendingMax {
			continue // long stale: the sweep forgets it
		}
		s.devMu.Lock()
		h := s.deferred[x.DeviceID]
		h.merge(x)
		h.due, h.stored = x.Due, true
		s.deferred[x.DeviceID] = h
		s.devMu.Unlock()
		s.armHeld(x.DeviceID, syncSettle)
	}
	if len(hs) > 0 {
		s.logger.Info("held check-syncs resumed", "component", "sessions", "count", len(hs))
	}
	return nil
}

// merge adds a stored held check-sync's lines and secrets to h.
func (h *heldSync) merge(x HeldSync) {
	for _, t := range x.Targets {
		h.captured = addTarget(h.captured, reachTarget{b: t.Binding, password: t.Password})
	}
	for k, v := range x.Secrets {
		if h.secrets == nil {
			h.secrets = map[string]string{}
		}
		h.secrets[k] = v
	}
}

// flushDeferred sends a held check-sync through the lines the phone holds
// now, and those logouts captured meanwhile. all (on a cluster, the phone
// registered here with check-syncs held in the store) also takes those
// other nodes held: this node reaches the phone now. A held check-sync
// this node stored goes out only if it takes it from the store, so a
// phone gets it once, from whichever node took it.
func (s *Sessions) flushDeferred(ctx context.Context, deviceID int64, all bool) {
	unlock := s.heldLocks.lock(deviceLockKey(deviceID))
	s.devMu.Lock()
	h, ok := s.deferred[deviceID]
	delete(s.deferred, deviceID)
	s.devMu.Unlock()
	if ok && h.stored || all {
		node := s.node
		if all {
			node = ""
		}
		taken, err := s.store.TakeHeldSyncs(context.WithoutCancel(ctx), deviceID, node)
		switch {
		case err != nil:
			// Ours is in hand; another node's waits for the phone's next
			// registration, or its node.
			s.logger.Warn("held check-syncs not taken from the store", "component", "sessions", "device", deviceID, "err", err)
		case ok && h.stored && !slices.ContainsFunc(taken, func(x HeldSync) bool { return x.Node == s.node }):
			ok = false // taken by the node the phone registered with: it sends it
		}
		for _, x := range taken {
			if x.Node != s.node || !ok {
				h.merge(x)
			}
		}
		ok = ok || len(taken) > 0
	}
	unlock()
	if !ok {
		return
	}
	d, err := s.store.GetDeviceByID(ctx, deviceID)
	if err != nil {
		s.logger.Error("held check-sync lost", "component", "sessions", "device", deviceID, "err", err)
		return
	}
	targets := s.targets(ctx, d, s.reg.DeviceBindings(ctx, d.ID), h.captured, h.secrets)
	s.logger.Debug("held check-sync sent", "component", "sessions", "mac", d.MAC, "targets", len(targets))
	s.send(ctx, d, targets, false, false)
}

// SyncDevice tells the phone to re-provision (a change to its files, an
// admin's check-sync): the one check-sync path besides logins and logouts.
func (s *Sessions) SyncDevice(ctx context.Context, d Device, reboot bool) {
	s.tell(ctx, d, reboot, nil, nil)
}

// LineDownWait is how long a login line the phone took down itself waits
// for the signal that tells a logout on the phone (the phone registers its
// locked profile) from a reboot (it fetches its boot file): a phone that
// sends neither is taken to have logged out.
const LineDownWait = 90 * time.Second

// defaultCoalesceSync is how recent an unanswered check-sync must be for
// another one to the same phone to be left out: two NOTIFYs in a row make
// a Yealink reboot twice, and reach a Polycom mid-reload on a line it may
// be dropping.
const defaultCoalesceSync = 2 * time.Second

// SyncPendingMax bounds how long a check-sync counts as not yet applied,
// for a phone that never answers it.
const SyncPendingMax = 5 * time.Minute

// signals returns the device's reboot-versus-logout memory, cached.
func (s *Sessions) signals(ctx context.Context, deviceID int64) (DeviceSignals, error) {
	if s.cluster == nil {
		s.devMu.Lock()
		sig, ok := s.sig[deviceID]
		s.devMu.Unlock()
		if ok {
			return sig, nil
		}
	}
	sig, err := s.store.DeviceSignals(ctx, deviceID)
	none := errors.Is(err, ErrNotFound)
	if none {
		sig, err = DeviceSignals{DeviceID: deviceID}, nil
	}
	if err != nil || s.cluster != nil {
		return sig, err
	}
	s.devMu.Lock()
	if cur, ok := s.sig[deviceID]; ok {
		sig = cur // filled meanwhile by an update: that one is newer
	} else {
		s.sig[deviceID] = sig
		if none || sig.blank() {
			s.sigBlank[deviceID] = struct{}{}
		}
	}
	s.devMu.Unlock()
	return sig, nil
}

// blank reports signals that say nothing: what no row says.
func (sig DeviceSignals) blank() bool {
	return sig.SyncAt.IsZero() && sig.SyncFetchedAt.IsZero() && sig.BootAt.IsZero() &&
		sig.LineDownSession == "" && sig.LineDownAt.IsZero() && sig.Reach == nil
}

// onEnrolled notes what a device its phone's first fetch just created
// (ReasonEnrolled) has: no stored signals, and its status, so that neither
// is read for its boot fetch and first registration (every phone of a boot
// storm is new: two of its statements). Devices are never deleted, so the
// ID is new and no row can name it. An edit of the device forgets the
// status. On a cluster every node reads the store instead.
func (s *Sessions) onEnrolled(_ context.Context, ev Event) {
	if s.cluster != nil || ev.DeviceID == 0 {
		return
	}
	s.devMu.Lock()
	defer s.devMu.Unlock()
	if ev.Kind == EventDeviceChanged && ev.Reason == ReasonEnrolled && ev.Device != nil {
		if _, ok := s.sig[ev.DeviceID]; !ok {
			s.sig[ev.DeviceID] = DeviceSignals{DeviceID: ev.DeviceID}
			s.sigBlank[ev.DeviceID] = struct{}{}
		}
		s.enrolled[ev.DeviceID] = ev.Device.Status
		return
	}
	if ev.Kind == EventDeviceChanged {
		// An edit may change the status. EventDeviceStatus is the
		// credentials' bookkeeping (prov/files) or deployed's own mark,
		// which took the entry first.
		delete(s.enrolled, ev.DeviceID)
	}
}

// signalChange is what an update of the signals did.
type signalChange int

const (
	sigSame   signalChange = iota // nothing changed
	sigMemory                     // changed, nothing a decision needs after a restart
	sigStore                      // changed: store it
)

// updateSignals applies fn to the device's signals under the device's
// signal lock — the fetch path, the registrar's events, the sweeper and
// logins all update them — and stores them when fn says so.
func (s *Sessions) updateSignals(ctx context.Context, deviceID int64, fn func(*DeviceSignals) signalChange) (DeviceSignals, error) {
	// A phone that hangs up its fetch must not leave the signals half kept.
	ctx = context.WithoutCancel(ctx)
	defer s.sigLocks.lock(deviceLockKey(deviceID))()
	sig, err := s.signals(ctx, deviceID)
	if err != nil {
		return sig, err
	}
	change := fn(&sig)
	if change == sigSame {
		return sig, nil
	}
	sig.UpdatedAt = s.now()
	s.devMu.Lock()
	s.sig[deviceID] = sig
	s.devMu.Unlock()
	if change == sigMemory && s.cluster == nil {
		return sig, nil // (on a cluster every node reads them from the store)
	}
	blank := sig.blank()
	if s.cluster == nil {
		s.devMu.Lock()
		_, stored := s.sigBlank[deviceID]
		s.devMu.Unlock()
		if blank && stored {
			return sig, nil // the store says nothing already
		}
	}
	if err := s.store.PutDeviceSignals(ctx, sig); err != nil {
		s.logger.Error("device signals not stored", "component", "sessions", "device", deviceID, "err", err)
		return sig, err
	}
	if s.cluster == nil {
		s.devMu.Lock()
		if blank {
			s.sigBlank[deviceID] = struct{}{}
		} else {
			delete(s.sigBlank, deviceID)
		}
		s.devMu.Unlock()
	}
	return sig, nil
}

// markSync records that the phone was told to re-provision: the reboot or
// line changes that follow are the phone applying it.
func (s *Sessions) markSync(ctx context.Context, deviceID int64, fetched bool) {
	now := s.wall()
	if s.cluster != nil {
		// Every node reads the signals from the store: the marks alone are
		// written, with no read first (a login's round trips, issue 16).
		ctx = context.WithoutCancel(ctx)
		defer s.sigLocks.lock(deviceLockKey(deviceID))()
		var fetchedAt time.Time
		if fetched {
			fetchedAt = now
		}
		if err := s.store.MarkDeviceSync(ctx, deviceID, now, fetchedAt); err != nil {
			s.logger.Error("device signals not stored", "component", "sessions", "device", deviceID, "err", err)
		}
		return
	}
	_, _ = s.updateSignals(ctx, deviceID, func(sig *DeviceSignals) signalChange {
		sig.SyncAt, sig.SyncFetchedAt = now, time.Time{}
		if fetched {
			sig.SyncFetchedAt = now
		}
		return sigStore
	})
}

// syncPending reports a check-sync the phone has not finished applying.
func (sig DeviceSignals) syncPending(now time.Time) bool {
	return !sig.SyncAt.IsZero() && now.Sub(sig.SyncAt) < SyncPendingMax
}

// BootFetched takes a fetch of the phone's boot file: the phone is starting, or reloading its configuration. Which
// one the registrations that follow tell: a reboot registers its lines
// with new Call-IDs, a reload keeps those of the lines it keeps.
//
// at is when the fetch happened, on the registrar's clock: registrar
// events reach Sessions later than fetches do, and are ordered by it.
// remote is the address the fetch came from: an unauthenticated fetch
// (TFTP, or a phone not yet deployed) counts only from the address the
// phone registers from, so no other host can fake its reboots.
func (s *Sessions) BootFetched(ctx context.Context, d Device, at time.Time, remote string, authenticated bool) error {
	return s.bootFetched(ctx, d, at, remote, authenticated,
		func(ctx context.Context) (Session, bool, error) { return s.ActiveOn(ctx, d.ID) })
}

// bootFetched is BootFetched with the device's active session from active
// (the fetch's own read of it, shared with the file namespace).
func (s *Sessions) bootFetched(ctx context.Context, d Device, at time.Time, remote string, authenticated bool,
	active func(context.Context) (Session, bool, error)) error {
	if !authenticated && remote != "" {
		for _, b := range s.anywhere(ctx, d.ID) {
			if h, _, ok := cutHostPort(b.Source); ok && h != remote {
				s.logger.Debug("boot-file fetch from another address than the phone's: not a reboot signal",
					"component", "sessions", "mac", d.MAC, "remote", remote)
				return nil
			}
		}
	}
	now := s.wall()
	logged := false
	if sess, ok, err := active(ctx); err == nil && ok && sess.ID != "" {
		logged = true
	}
	_, err := s.updateSignals(ctx, d.ID, func(sig *DeviceSignals) signalChange {
		if sig.syncPending(now) {
			// The reload (or the reboot some phones do) a check-sync asked
			// for — every boot signal until a line of the new configuration
			// registers (Polycom's updater and application each fetch the
			// boot file): so a phone that reboots to apply a login is not
			// logged out by it (the restart loop of the Spectralink
			// user-profile guide).
			if sig.SyncFetchedAt.IsZero() {
				sig.SyncFetchedAt = at
				return sigStore
			}
			// A further boot fetch: still applying (the phone has not
			// registered since), or a reboot after it applied the
			// check-sync, with that registration still on its way here.
			// Kept; the registration that ends the check-sync tells which.
			if !sig.BootAt.IsZero() && (sig.BootAt.Before(sig.SyncAt) || !at.After(sig.BootAt)) {
				return sigSame // an older boot fetch waits for its decision, or this is not newer
			}
			sig.BootAt = at
			return sigStore
		}
		sig.BootAt = at
		if !logged && sig.LineDownSession == "" {
			return sigMemory // nobody logged in: nothing to decide after a restart
		}
		return sigStore
	})
	return err
}

// regBindings is what the registrar holds for the device (none without one).
func (s *Sessions) regBindings(ctx context.Context, deviceID int64) []Binding {
	if s.reg == nil {
		return nil
	}
	return s.reg.DeviceBindings(ctx, deviceID)
}

// rebooted applies a reboot the phone made on its own (at bootAt): a
// persistent session stays, any other session that began before it ends.
// Registrar events arrive on their own goroutine, so a login may have
// started after the boot they report.
func (s *Sessions) rebooted(ctx context.Context, deviceID int64, bootAt time.Time) error {
	sess, ok, err := s.activeOn(ctx, deviceID)
	if err != nil || !ok || sess.Persistent || !sess.StartedAt.Before(bootAt) {
		return err
	}
	return s.End(ctx, sess.ID, EndReboot, PhoneActor(""))
}

// BindingChanged turns a registrar event into session and device facts:
// Deployed, a reboot (a boot-file fetch, then lines with new Call-IDs),
// and a login line the phone took down itself (then its locked profile
// registered: a logout on the phone).
//
// at is when the registrar made the change.
func (s *Sessions) BindingChanged(ctx context.Context, change BindingChange, b Binding, at time.Time) error {
	devID := b.DeviceID
	kind, id := b.Owner.Kind, b.Owner.ID
	if devID == 0 {
		devID = s.deviceOfOwner(ctx, kind, id)
	}
	if devID == 0 {
		return nil
	}
	switch change {
	case LineRegistered, LineRefreshed:
		return s.lineUp(ctx, change, devID, kind, id, b, at)
	case LineUnregistered, LineExpired:
		// A phone drops a line by unregistering it, or by no longer
		// refreshing it.
		if kind == OwnerSession {
			return s.lineDown(ctx, change, devID, id, b, at)
		}
	}
	return nil
}

// deviceOfOwner finds the device of a binding stored before bindings
// carried one.
func (s *Sessions) deviceOfOwner(ctx context.Context, kind OwnerKind, id string) int64 {
	switch kind {
	case OwnerDevice:
		n, _ := strconv.ParseInt(id, 10, 64)
		return n
	case OwnerSession:
		if sess, err := s.store.GetSession(ctx, id); err == nil {
			return sess.DeviceID
		}
	}
	return 0
}

// lineKey is a line's key in callIDs: the owner and the AOR, so that a new
// login's line is never compared with an earlier login's on that phone.
type lineKey struct {
	owner Owner
	aor   string
}

func callKey(b Binding) lineKey { return lineKey{b.Owner, b.AOR} }

// lineCalls is a device's lines' last Call-IDs: a short slice (a phone has
// a line or a few), not a map per device, which cost 10,000 maps in a
// boot storm.
type lineCalls []lineCall

type lineCall struct {
	key    lineKey
	callID string
}

// set records callID for k and returns the calls and the previous Call-ID.
func (c lineCalls) set(k lineKey, callID string) (lineCalls, string) {
	for i := range c {
		if c[i].key == k {
			prev := c[i].callID
			c[i].callID = callID
			return c, prev
		}
	}
	return append(c[:len(c):len(c)], lineCall{k, callID}), ""
}

// without drops the lines owner holds.
func (c lineCalls) without(owner Owner) lineCalls {
	return slices.DeleteFunc(c, func(l lineCall) bool { return l.key.owner == owner })
}

func (s *Sessions) lineUp(ctx context.Context, change BindingChange, devID int64, kind OwnerKind, id string, b Binding, at time.Time) error {
	s.devMu.Lock()
	calls, prev := s.callIDs[devID].set(callKey(b), b.CallID)
	s.callIDs[devID] = calls
	s.devMu.Unlock()
	newCall := prev != "" && prev != b.CallID
	if err := s.deployed(ctx, devID, kind, b.Source); err != nil {
		return err
	}
	if change == LineRefreshed && !newCall {
		return nil
	}
	var endSession string
	reboot, flush, heldAnywhere := false, false, false
	var bootAt time.Time
	_, err := s.updateSignals(ctx, devID, func(sig *DeviceSignals) signalChange {
		// Registrar events reach Sessions late: each signal answers only
		// those that came before it (at, BootAt, LineDownAt, SyncAt and
		// SyncFetchedAt are all on the registrar's clock).
		booted := !sig.BootAt.IsZero() && !at.Before(sig.BootAt)
		if booted && !sig.SyncAt.IsZero() && !sig.BootAt.Before(sig.SyncAt) &&
			!at.Before(sig.SyncAt) && !at.Before(sig.SyncFetchedAt) {
			// The boot fetch came while the phone applied a check-sync,
			// and this line is it applied: part of applying, no reboot.
			booted = false
			sig.BootAt = time.Time{}
		}
		bootAt = sig.BootAt
		// A line registered after the phone fetched what it was told to:
		// it has applied it; a held check-sync can go now.
		flush = !sig.SyncFetchedAt.IsZero() && !at.Before(sig.SyncFetchedAt)
		heldAnywhere = s.cluster != nil && sig.HeldSync
		changed := sigSame
		switch {
		case sig.LineDownSession != "" && at.Before(sig.LineDownAt):
			// registered before the line went down, reported late
		case sig.LineDownSession != "" && kind == OwnerSession && id == sig.LineDownSession:
			// The line came back: re-registered after a reload, or with a
			// new Call-ID after a reboot.
			reboot = booted && newCall
			sig.LineDownSession, sig.LineDownAt, sig.Reach, sig.BootAt = "", time.Time{}, nil, time.Time{}
			changed = sigStore
		case sig.LineDownSession != "" && kind == OwnerDevice:
			if booted {
				reboot = true // it rebooted and came back without the login
			} else {
				// It went back to its locked profile by itself: the user
				// logged out on the phone.
				endSession = sig.LineDownSession
			}
			sig.LineDownSession, sig.LineDownAt, sig.Reach, sig.BootAt = "", time.Time{}, nil, time.Time{}
			changed = sigStore
		case sig.LineDownSession != "":
			// another line: the decision waits for the one that went down
		case booted:
			// The first line after a boot-file fetch decides: new Call-IDs
			// (or the device account, the login forgotten) are a reboot.
			reboot = newCall || kind == OwnerDevice
			sig.BootAt = time.Time{}
			changed = sigStore
		}
		if !sig.SyncAt.IsZero() && !at.Before(sig.SyncAt) && !at.Before(sig.SyncFetchedAt) {
			// A line registered after the phone was told (and fetched):
			// it has applied the check-sync, or the native login it
			// fetched. An older registration reported late says nothing.
			sig.SyncAt, sig.SyncFetchedAt = time.Time{}, time.Time{}
			changed = sigStore
		}
		return changed
	})
	if err != nil {
		return err
	}
	if flush {
		s.flushDeferred(ctx, devID, heldAnywhere)
	}
	switch {
	case endSession != "":
		return s.End(ctx, endSession, EndPhoneUnregister, PhoneActor(""))
	case reboot:
		// Every phone's first line after its boot: the session read alone
		// decides (no device read on the registrar's event path).
		return s.rebooted(ctx, devID, bootAt)
	}
	return nil
}

// lineDown takes a login line the phone took down itself: the next signal
// decides between a logout on the phone (its locked profile registers) and
// a reboot (a boot-file fetch, then the line again with a new Call-ID), and
// LineDownWait ends the wait. A persistent login outlives its line
// expiring (a phone switched off keeps its permanent login).
func (s *Sessions) lineDown(ctx context.Context, change BindingChange, devID int64, sessID string, b Binding, at time.Time) error {
	sess, err := s.store.GetSession(ctx, sessID)
	if err != nil || !sess.Active() || sess.DeviceID != devID || change == LineExpired && sess.Persistent {
		return err
	}
	_, err = s.updateSignals(ctx, devID, func(sig *DeviceSignals) signalChange {
		if sig.LineDownSession == sessID && !at.After(sig.LineDownAt) {
			return sigSame
		}
		rb := b
		sig.LineDownSession, sig.LineDownAt, sig.Reach = sessID, at, &rb
		if sig.BootAt.Before(at) {
			// A boot-file fetch before the line went down was a reload;
			// only one after it says the phone is rebooting.
			sig.BootAt = time.Time{}
		}
		return sigStore
	})
	return err
}

// sweepLinesDown decides for a phone whose login line has been down for
// LineDownWait with no line registered since: a logout on the phone, or,
// when it fetched its boot file after the line went down, a reboot it has
// not come back from. now is the sessions' clock, which is the registrar's
// (LineDownAt) outside tests, where it only runs ahead.
func (s *Sessions) sweepLinesDown(ctx context.Context, deviceID int64, now time.Time) {
	sig, err := s.signals(ctx, deviceID)
	if err != nil || sig.LineDownSession == "" || now.Sub(sig.LineDownAt) < LineDownWait {
		return
	}
	id, reason := sig.LineDownSession, EndPhoneUnregister
	if sig.BootAt.After(sig.LineDownAt) {
		// A boot-file fetch after the line went down: a reboot the phone
		// has not come back from.
		reason = EndReboot
	}
	_, _ = s.updateSignals(ctx, deviceID, func(sig *DeviceSignals) signalChange {
		if sig.LineDownSession != id {
			return sigSame
		}
		sig.LineDownSession, sig.LineDownAt = "", time.Time{}
		return sigStore
	})
	if reason == EndReboot {
		if sess, err := s.store.GetSession(ctx, id); err == nil && sess.Persistent {
			return
		}
	}
	if err := s.End(ctx, id, reason, PhoneActor("")); err != nil {
		s.logger.Error("sweep: end session", "component", "sessions", "session", id, "err", err)
	}
}

// forgetSession drops what the signals remember of an ended session.
func (s *Sessions) forgetSession(ctx context.Context, sess Session) {
	owner := SessionOwner(sess.ID)
	s.devMu.Lock()
	if c := s.callIDs[sess.DeviceID].without(owner); len(c) > 0 {
		s.callIDs[sess.DeviceID] = c
	} else {
		delete(s.callIDs, sess.DeviceID)
	}
	s.devMu.Unlock()
	_, _ = s.updateSignals(ctx, sess.DeviceID, func(sig *DeviceSignals) signalChange {
		if sig.LineDownSession != sess.ID {
			return sigSame
		}
		sig.LineDownSession, sig.LineDownAt = "", time.Time{}
		return sigStore
	})
}

// deployed marks a managed device deployed the first time anything it was
// given authenticates (a line's REGISTER, a digest file fetch), and keeps
// its last-seen time, in one conditional update of those columns only, so
// an assignment or claim written meanwhile is never undone.
func (s *Sessions) deployed(ctx context.Context, devID int64, kind OwnerKind, source string) error {
	now := s.now()
	if s.seenDeployed(devID, now) {
		return nil
	}
	d, err := s.deviceForDeployed(ctx, devID)
	if err != nil {
		return err
	}
	if d.Status == DeviceDeployed && now.Sub(d.LastSeen) <= deployedSeenEvery {
		s.noteDeployed(devID, d.LastSeen)
		return nil
	}
	if d.Status != DeviceNotDeployed && d.Status != DeviceDeployed {
		return nil // pending approval or denied: an admin decides
	}
	host, _, _ := cutHostPort(source)
	changed, err := s.store.MarkDeployed(ctx, devID, now, host)
	if err != nil || !changed {
		return err
	}
	s.events.Publish(ctx, Event{Kind: EventDeviceStatus, DeviceID: d.ID})
	s.noteDeployed(devID, now) // after the event, which forgets it
	if d.Status == DeviceNotDeployed && kind == OwnerDevice {
		// Its first files were the secure bootstrap's locked profile: a
		// login already made here (an assigned desk phone, an admin's)
		// reaches it now that it holds its credentials. Not a native
		// login: the phone made it from the files it fetched and is
		// applying it (this event may come after it, the registrar's
		// queue being behind), and a check-sync would only make it fetch
		// again and leave its next reboot read as applying it.
		if sess, ok, err := s.activeOn(ctx, d.ID); err == nil && ok && sess.Door != DoorNative &&
			!holdsLine(s.regBindings(ctx, d.ID), sess) {
			if d.MAC == "" { // only the status was known (deviceForDeployed): the check-sync needs the rest
				if d, err = s.store.GetDeviceByID(ctx, devID); err != nil {
					return err
				}
			}
			d.Status = DeviceDeployed
			s.SyncDevice(ctx, d, false)
		}
	}
	return nil
}

// deviceForDeployed is what deployed needs of the device: a device just
// enrolled (onEnrolled) as it was created, once, else the store's row.
func (s *Sessions) deviceForDeployed(ctx context.Context, devID int64) (Device, error) {
	s.devMu.Lock()
	st, ok := s.enrolled[devID]
	delete(s.enrolled, devID)
	s.devMu.Unlock()
	if ok {
		// Only ID and Status are read for a device not yet deployed.
		return Device{ID: devID, Status: st}, nil
	}
	return s.store.GetDeviceByID(ctx, devID)
}

// deployedSeenEvery is how often a registering phone's last-seen time is
// written.
const deployedSeenEvery = 5 * time.Minute

// seenDeployed reports a device known deployed and seen within
// deployedSeenEvery: its registrations need no device read. Every
// registration and refresh of every line comes here, on the registrar's
// one event goroutine, and a store read each let that queue grow by tens
// of MB in a boot storm. On a cluster another node may change the device,
// so it is always read.
func (s *Sessions) seenDeployed(devID int64, now time.Time) bool {
	if s.cluster != nil {
		return false
	}
	s.devMu.Lock()
	at, ok := s.deployedSeen[devID]
	s.devMu.Unlock()
	return ok && now.Sub(at) <= deployedSeenEvery && !now.Before(at)
}

func (s *Sessions) noteDeployed(devID int64, at time.Time) {
	if s.cluster != nil {
		return
	}
	s.devMu.Lock()
	s.deployedSeen[devID] = at
	s.devMu.Unlock()
}

// forgetDeployed drops what seenDeployed knows of a device an event
// changed (its status, a credential reset, a deletion).
func (s *Sessions) forgetDeployed(_ context.Context, ev Event) {
	if ev.DeviceID == 0 || ev.Kind != EventDeviceStatus && ev.Kind != EventDeviceChanged {
		return
	}
	s.devMu.Lock()
	delete(s.deployedSeen, ev.DeviceID)
	s.devMu.Unlock()
}

// holdsLine reports whether the phone registered the session's line.
func holdsLine(live []Binding, sess Session) bool {
	for _, b := range live {
		if b.Owner == SessionOwner(sess.ID) {
			return true
		}
	}
	return false
}

// DeviceAuthenticated marks a device deployed after a digest file fetch
// with its provisioning credentials.
func (s *Sessions) DeviceAuthenticated(ctx context.Context, d Device, remote string) error {
	return s.deployed(ctx, d.ID, "", remote)
}

// cutHostPort splits "host:port" and "[v6]:port".
func cutHostPort(addr string) (string, string, bool) {
	i := len(addr) - 1
	for i >= 0 && addr[i] != ':' {
		i--
	}
	if i <= 0 {
		return "", "", false
	}
	host := addr[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, addr[i+1:], true
}
