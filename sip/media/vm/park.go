package vm

import (
	"context"
	"time"
)

// Call park: a call to "park.<slot>" while the slot is free is parked
// there, hearing a short tone every 4 s; the next call to the same slot
// picks it up, and voicemail bridges the two (RTP relayed both ways,
// transcoded between µ-law and A-law) until either hangs up, when it
// hangs up the other. A call parked longer than parkTimeout is hung up.

const parkTimeout = 10 * time.Minute

type parked struct {
	md     *media
	pickup chan *pickup // buffered 1: at most one retriever takes the slot
	ended  chan struct{}
}

type pickup struct {
	md    *media
	ended chan struct{}
}

// park parks the call or picks up the one parked on slot; it reports
// whether the caller hung up.
func (s *Server) park(ctx context.Context, done <-chan struct{}, md *media, slot string) bool {
	s.parkMu.Lock()
	if p := s.parks[slot]; p != nil {
		delete(s.parks, slot)
		s.parkMu.Unlock()
		pk := &pickup{md: md, ended: make(chan struct{})}
		defer close(pk.ended)
		p.pickup <- pk
		s.m.parks.WithLabelValues("picked_up").Inc()
		return s.bridged(ctx, done, p.ended)
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
		}
		s.parkMu.Unlock()
	}
	hold := append(tone(100, 440), make([]int16, 3900*8)...)
	t := time.NewTicker(frameTime)
	defer t.Stop()
	limit := time.NewTimer(parkTimeout)
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
