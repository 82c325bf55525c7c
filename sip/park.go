package sip

import (
	"context"
	"net"

	"github.com/emiago/sipgo/sip"
)

// Call park across cluster nodes: a call parked on a slot lives on the
// node that parked it (its park server bridges the pickup's RTP). A park
// code dialled on another node for that slot is handed to the parking
// node's proxy, signed as a binding's hand-off is (Handoff, the AOR being
// the slot's park entity), which sends it to its own park server: the
// pickup, or a park on the occupied slot, is answered as on one node, and
// both proxies record-route, so ACK and BYE cross them. Handed to the
// proxy rather than to the park server itself, which listens on loopback
// and trusts whatever its proxy sends it.

// parkedElsewhere asks whether another node parked a call on slot.
func (p *proxy) parkedElsewhere(ctx context.Context, slot string) (string, bool) {
	if p.parkHeld == nil {
		return "", false
	}
	return p.parkHeld.ParkedElsewhere(ctx, slot)
}

// parkOnNode hands a park code to the node whose call is parked on slot;
// without the cluster secret it is answered 486, as the slot's claim here
// would be.
func (p *proxy) parkOnNode(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, fwd *sip.Request,
	rec CallRecord, slot, addr string) {
	rec.Route, rec.Callee = RoutePark, parkEntity(slot)
	if !p.handoffKey.enabled() {
		p.m.parkHandoffs.WithLabelValues("unsigned").Inc()
		p.log.Info("park slot held by another node, no cluster.secret to hand the call over", "slot", slot, "node_addr", addr)
		p.reject(req, tx, rec, true, 486, "Parked On Another Node")
		return
	}
	c := newCall(p, req, tx, fwd, rec)
	c.runCode(ctx, RoutePark, parkEntity(slot), func() bool {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			p.log.Warn("park slot holder address", "addr", addr, "err", err)
			return false
		}
		var u sip.Uri
		if sip.ParseUri("sip:park."+slot+"@"+net.JoinHostPort(host, port), &u) != nil {
			return false
		}
		p.m.parkHandoffs.WithLabelValues("sent").Inc()
		return c.fork(u, addr, "UDP", sip.Addr{}, Owner{}, false, parkEntity(slot))
	})
}

// handoffPark takes a park code another node handed over (its signature
// checked) to this node's park server.
func (p *proxy) handoffPark(req *sip.Request, tx sip.ServerTransaction, fwd *sip.Request, node, slot string) {
	if p.parking == nil || !req.IsInvite() {
		p.m.handoffs.WithLabelValues("gone").Inc()
		p.respond(req, tx, 480, "Temporarily Unavailable")
		return
	}
	p.m.parkHandoffs.WithLabelValues("accepted").Inc()
	// No call record: the handing node keeps the call's.
	rec := CallRecord{Caller: Owner{Kind: OwnerTrunk, ID: node}, CallID: stripCRLF(req.CallID().Value()), Route: RoutePark,
		Start: p.now()}
	c := newCall(p, req, tx, fwd, rec)
	c.handedOver = true
	c.runVoicemail(context.Background(), RoutePark, "park", slot, parkEntity(slot))
}
