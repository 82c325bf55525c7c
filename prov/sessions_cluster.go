package prov

import (
	"context"
	"errors"
	"fmt"
)

// How several nodes share one store. Every node runs the same
// services over the shared PostgreSQL store; what a node keeps in memory
// (the registrar's bindings, the credential index, caches) follows the
// other nodes through events relayed over the store (LISTEN/NOTIFY, see
// daemon/cluster.go), which carry a kind and an ID and are re-read here.
//
// A phone is reached by the node it registered through, the binding's
// holder: that node's socket is the one the phone's NAT mapping and its
// TCP/TLS connection lead to, and the one the phone expects requests
// from. So a logout on any node ends the session in the store and relays
// session_ended; the holder unbinds the session's lines and sends the
// check-sync, as the node of the logout would on a single node.

// clusterLock takes the cluster-wide locks of keys on a shared store,
// after the node's own (which keep the pool of store connections free of
// waiters from this node); a no-op on one node.
func (s *Sessions) clusterLock(ctx context.Context, keys ...string) (func(), error) {
	if s.cluster == nil {
		return func() {}, nil
	}
	return s.cluster.Lock(ctx, keys...)
}

// anywhere returns the phone's live bindings on every node: where a phone
// is (an HTTP login from it, its boot fetch) is a question for the
// cluster, though only the holder reaches it.
func (s *Sessions) anywhere(ctx context.Context, deviceID int64) []Binding {
	local := s.regBindings(ctx, deviceID)
	if s.cluster == nil {
		return local
	}
	all, err := s.cluster.LiveDeviceBindings(ctx, deviceID, s.wall())
	if err != nil {
		s.logger.Warn("bindings on other nodes not read", "component", "sessions", "device", deviceID, "err", err)
		return local
	}
	return append(local, all...)
}

// EndedElsewhere applies a session another node ended: the credentials
// go, and this node unbinds the session's lines it holds and tells the
// phone through them. A session replaced by a login on its own phone is
// told by that login's StartedElsewhere, with the lines kept here.
func (s *Sessions) EndedElsewhere(ctx context.Context, id string) error {
	sess, err := s.store.GetSession(ctx, id)
	if err != nil {
		return fmt.Errorf("session %s ended elsewhere: %w", id, err)
	}
	owner := SessionOwner(sess.ID)
	if s.creds != nil {
		s.creds.Revoke(owner)
	}
	// (A native session's refusal window is in the store, kept by the
	// node that ended it.)
	s.forgetSession(ctx, sess)
	if s.reg == nil {
		return nil
	}
	removed, err := s.reg.Unbind(ctx, owner)
	if err != nil {
		return fmt.Errorf("session %s ended elsewhere: unbind: %w", id, err)
	}
	reg := s.reg
	s.timers.AfterFunc(UnbindRecheck, func() { _, _ = reg.Unbind(context.Background(), owner) })
	s.noteSources(sess.DeviceID, removed)
	secrets := map[string]string{sess.SIPUser: sess.SIPPassword}
	if sess.EndReason == EndReplaced {
		if cur, ok, err := s.ActiveOn(ctx, sess.DeviceID); err == nil && ok && cur.ID != sess.ID {
			// The login that replaced it is this phone's next: its
			// check-sync reaches the phone once, through these lines too.
			s.devMu.Lock()
			r := s.remoteReach[sess.DeviceID]
			if r.secrets == nil {
				r.secrets = map[string]string{}
			}
			r.removed = append(r.removed, removed...)
			r.secrets[sess.SIPUser] = sess.SIPPassword
			s.remoteReach[sess.DeviceID] = r
			s.devMu.Unlock()
			return nil
		}
	}
	if len(removed) == 0 && len(s.reg.DeviceBindings(ctx, sess.DeviceID)) == 0 {
		return nil // the phone is another node's to tell
	}
	dev, err := s.store.GetDeviceByID(ctx, sess.DeviceID)
	if err != nil {
		return fmt.Errorf("session %s ended elsewhere: %w", id, err)
	}
	s.tell(ctx, dev, false, removed, secrets)
	return nil
}

// StartedElsewhere applies a login made on another node: its credentials
// join the index (the phone registers the new line wherever it is), and
// the node holding the phone's lines tells it, unless it is loading the
// profile already (the native door).
func (s *Sessions) StartedElsewhere(ctx context.Context, id string) error {
	sess, err := s.store.GetSession(ctx, id)
	if err != nil {
		return fmt.Errorf("session %s started elsewhere: %w", id, err)
	}
	s.devMu.Lock()
	reach := s.remoteReach[sess.DeviceID]
	delete(s.remoteReach, sess.DeviceID)
	s.devMu.Unlock()
	if !sess.Active() {
		return nil // ended since: its end is on its way
	}
	if s.creds != nil {
		u, err := s.store.GetUserByID(ctx, sess.UserID)
		if err != nil {
			return fmt.Errorf("session %s started elsewhere: %w", id, err)
		}
		s.creds.AddSession(sess, u)
	}
	if sess.Door == DoorNative || s.reg == nil {
		return nil
	}
	if len(reach.removed) == 0 && len(s.reg.DeviceBindings(ctx, sess.DeviceID)) == 0 {
		return nil
	}
	dev, err := s.store.GetDeviceByID(ctx, sess.DeviceID)
	if err != nil {
		return fmt.Errorf("session %s started elsewhere: %w", id, err)
	}
	s.tell(ctx, dev, false, reach.removed, reach.secrets)
	return nil
}

// ResyncCluster re-reads what events would have said while this node
// missed them: the credential index, and this node's session lines whose
// session has ended (unbound and told, as EndedElsewhere does). held are
// the bindings this node holds. caughtUp (may be nil) is called once the
// credential index is current, before the phones are told: they register
// at once, and the node must serve them.
func (s *Sessions) ResyncCluster(ctx context.Context, held []Binding, caughtUp func()) error {
	if s.creds != nil {
		if err := s.creds.Reload(ctx); err != nil {
			return fmt.Errorf("resync: %w", err)
		}
	}
	if caughtUp != nil {
		caughtUp()
	}
	seen := map[string]bool{}
	for _, b := range held {
		kind, id := b.Owner.Kind, b.Owner.ID
		if kind != OwnerSession || seen[id] {
			continue
		}
		seen[id] = true
		sess, err := s.store.GetSession(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			if s.reg != nil {
				_, _ = s.reg.Unbind(ctx, b.Owner) // nothing left to tell it with
			}
			continue
		case err != nil:
			return fmt.Errorf("resync: %w", err)
		case sess.Active():
			continue
		}
		if err := s.EndedElsewhere(ctx, id); err != nil {
			s.logger.Warn("resync: ended session not applied", "component", "sessions", "session", id, "err", err)
		}
	}
	return nil
}

// heldElsewhere reports a phone with live bindings on another node.
func (s *Sessions) heldElsewhere(ctx context.Context, deviceID int64) bool {
	if s.cluster == nil {
		return false
	}
	bs, err := s.cluster.LiveDeviceBindings(ctx, deviceID, s.wall())
	return err == nil && len(bs) > 0
}
