package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
	"hotdesk/sip/media/vm"
)

// parkSlots shares the call park slots occupied on this node with the
// other cluster nodes through the store: the park server claims a slot
// there before it parks a call, and the proxy looks up which node to hand
// a pickup to. A row older than the park timeout, or of a node whose
// heartbeat stopped nodeDeadAfter ago, is a dead node's.
type parkSlots struct {
	st   prov.Store
	node string
	// addr is this node's proxy as the other nodes reach it.
	addr   string
	now    func() time.Time
	logger *slog.Logger
}

// Claim implements vm.ParkSlots.
func (p parkSlots) Claim(ctx context.Context, slot string) error {
	site, ok := prov.ParkSlotSite(slot)
	if !ok {
		return fmt.Errorf("park slot %q: not a slot name", slot)
	}
	now := p.now()
	err := p.st.ClaimParkSlot(ctx, prov.ParkedCall{Slot: slot, SiteID: site, Node: p.node, Addr: p.addr, ParkedAt: now},
		now.Add(-vm.ParkTimeout), now.Add(-nodeDeadAfter))
	if errors.Is(err, prov.ErrConflict) {
		return fmt.Errorf("%w: %w", vm.ErrSlotTaken, err)
	}
	return err
}

// Release implements vm.ParkSlots.
func (p parkSlots) Release(ctx context.Context, slot string) error {
	return p.st.ReleaseParkSlot(ctx, slot, p.node)
}

// ParkedElsewhere implements sip.ParkHolders.
func (p parkSlots) ParkedElsewhere(ctx context.Context, slot string) (string, bool) {
	pc, err := p.st.GetParkSlot(ctx, slot)
	if err != nil {
		if !errors.Is(err, prov.ErrNotFound) {
			// The park server's claim will fail the same way: 503.
			p.logger.Warn("park slot lookup", "slot", slot, "err", err)
		}
		return "", false
	}
	now := p.now()
	if pc.Node == p.node || pc.Addr == "" || pc.ParkedAt.Before(now.Add(-vm.ParkTimeout)) ||
		!pc.NodeSeen.IsZero() && pc.NodeSeen.Before(now.Add(-nodeDeadAfter)) {
		return "", false // the call died with its node: the park server answers
	}
	return pc.Addr, true
}

// nodeHeartbeat is how often a cluster node writes that it is alive;
// nodeDeadAfter how long a silent node's park slots stay held (a few
// heartbeats lost to a busy database are not a death).
const (
	nodeHeartbeat = 5 * time.Second
	nodeDeadAfter = 20 * time.Second
)

// heartbeat writes the node's sign of life every nodeHeartbeat until ctx
// ends. A failed write is logged and retried at the next beat: the other
// nodes take this one's park slots only after nodeDeadAfter of silence.
func heartbeat(ctx context.Context, st prov.ParkStore, node string, now func() time.Time, failed prometheus.Counter,
	logger *slog.Logger) error {
	t := time.NewTicker(nodeHeartbeat)
	defer t.Stop()
	for {
		if err := st.TouchNode(ctx, node, now()); err != nil && ctx.Err() == nil {
			failed.Inc()
			logger.Warn("heartbeat not written", "component", "cluster", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// parkAddr is this node's proxy as other nodes reach it: its first UDP
// SIP listener, or on a wildcard listener the voicemail media address
// (this node's address phones reach) with its port. "" without UDP.
func parkAddr(udp []string, media string) string {
	if len(udp) == 0 {
		return ""
	}
	ap, err := netip.ParseAddrPort(udp[0])
	if err != nil {
		return udp[0]
	}
	if ap.Addr().IsUnspecified() {
		m, err := netip.ParseAddr(media)
		if err != nil {
			return ""
		}
		return net.JoinHostPort(m.String(), fmt.Sprint(ap.Port()))
	}
	return udp[0]
}
