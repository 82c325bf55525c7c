package vm

import (
	"context"
	"errors"
	"time"
)

// Call park: a call to "park.<slot>" while the slot is free is parked
// there, hearing a short tone every 4 s; the next call to the same slot
// picks it up, and voicemail bridges the two (RTP relayed both ways,
// transcoded between µ-law and A-law) until either hangs up, when it
// hangs up the other. A call parked longer than ParkTimeout is hung up.
//
// On a cluster (Deps.Slots) a slot is also claimed in the store shared by
// every node before the call is answered, so two nodes never park on one
// slot; the row goes when the call leaves the slot.

// ParkTimeout is how long a call stays parked; a slot's row older than
// this is a dead node's.
const ParkTimeout = 10 * time.Minute

// ErrSlotTaken is Claim's answer when another node's call is parked on
// the slot.
var ErrSlotTaken = errors.New("park slot taken on another node")

// ParkSlots is implemented by the daemon on a cluster: the park slots
// occupied on every node, in the shared store.
type ParkSlots interface {
	// Claim records slot as parked on this node; ErrSlotTaken when another
	// node's call is parked there.
	Claim(ctx context.Context, slot string) error
	// Release frees this node's row of slot (its call was picked up,
	// hung up or timed out).
	Release(ctx context.Context, slot string) error
}

// slotTimeout bounds a store call of the park slots; they run under
// parkMu, so that a claim and a release of one slot never cross.
const slotTimeout = 5 * time.Second

type parked struct {
	md     *media
	pickup chan *pickup // buffered 1: at most one retriever takes the slot
	ended  chan struct{}
}

type pickup struct {
	md    *media
	ended chan struct{}
}

// claimSlot runs before a park call is answered: unless a call is parked
// on slot here (the caller picks it up), it claims the slot in the shared
// store. claimed reports a claim made; an error refuses the call.
func (s *Server) claimSlot(slot string) (claimed bool, err error) {
	if s.slotReg == nil {
		return false, nil
	}
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if s.parks[slot] != nil {
		return false, nil
	}
	return true, s.claimLocked(slot)
}

// claimLocked claims slot in the store; parkMu is held.
func (s *Server) claimLocked(slot string) error {
	ctx, cancel := context.WithTimeout(context.Background(), slotTimeout)
	defer cancel()
	err := s.slotReg.Claim(ctx, slot)
	switch {
	case err == nil:
		s.m.claims.WithLabelValues("claimed").Inc()
	case errors.Is(err, ErrSlotTaken):
		s.m.claims.WithLabelValues("taken").Inc()
		s.log.Info("park slot taken on another node", "slot", slot)
	default:
		s.m.claims.WithLabelValues("failed").Inc()
		s.log.Warn("park slot claim", "slot", slot, "err", err)
	}
	return err
}

// releaseLocked frees this node's row of slot; parkMu is held.
func (s *Server) releaseLocked(slot string) {
	if s.slotReg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), slotTimeout)
	defer cancel()
	if err := s.slotReg.Release(ctx, slot); err != nil {
		s.log.Warn("park slot release", "slot", slot, "err", err)
	}
}

// unclaim undoes claimSlot's claim of a call that was not answered.
func (s *Server) unclaim(slot string) {
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if s.parks[slot] == nil {
		s.releaseLocked(slot)
	}
}

// park parks the call or picks up the one parked on slot; it reports
// whether the caller hung up. claimed: claimSlot claimed the slot.
func (s *Server) park(ctx context.Context, done <-chan struct{}, md *media, slot string, claimed bool) bool {
	s.parkMu.Lock()
	if p := s.parks[slot]; p != nil {
		delete(s.parks, slot)
		s.releaseLocked(slot)
		s.parkMu.Unlock()
		pk := &pickup{md: md, ended: make(chan struct{})}
		defer close(pk.ended)
		p.pickup <- pk
		s.m.parks.WithLabelValues("picked_up").Inc()
		return s.bridged(ctx, done, p.ended)
	}
	if s.slotReg != nil && !claimed {
		// The call this one was to pick up left before the answer.
		if err := s.claimLocked(slot); err != nil {
			s.parkMu.Unlock()
			return false
		}
	}
	p := &parked{md: md, pickup: make(chan *pickup, 1), ended: make(chan struct{})}
	s.parks[slot] = p
	s.parkMu.Unlock()
	defer close(p.ended)
	s.m.parks.WithLabelValues("parked").Inc()
	unpark := func() {
		s.parkMu.Lock()
		if s.parks[slot] == p {
			delete(s.parks, slot)
			s.releaseLocked(slot)
		}
		s.parkMu.Unlock()
	}
	hold := append(tone(100, 440), make([]int16, 3900*8)...)
	t := time.NewTicker(frameTime)
	defer t.Stop()
	limit := time.NewTimer(ParkTimeout)
	defer limit.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			unpark()
			return false
		case <-done:
			unpark()
			return true
		case <-limit.C:
			unpark()
			s.m.parks.WithLabelValues("timed_out").Inc()
			return false
		case pk := <-p.pickup:
			md.relay.Store(pk.md)
			pk.md.relay.Store(md)
			return s.bridged(ctx, done, pk.ended)
		case <-t.C:
			f := (i % (len(hold) / frameSamples)) * frameSamples
			md.send(hold[f:f+frameSamples], f == 0)
		}
	}
}

// bridged waits for the caller or the other leg to end.
func (s *Server) bridged(ctx context.Context, done <-chan struct{}, other <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-other:
		return false
	case <-ctx.Done():
		return false
	}
}
