package daemon

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/sip/media/vm"
	"hotdesk/sip/media/vm/vmtest"
)

// TestClusterParkPickedUpOnOtherNode: two nodes on one PostgreSQL with
// voicemail. Bob's phone, on n1, parks a call on *701: n1's park server
// claims the slot in the shared store. Carol's phone, registered on n2,
// dials *701: n2 finds the slot held by n1 and hands the INVITE to n1's
// proxy, whose park server bridges the two calls (RTP both ways); the
// slot's row goes with the pickup, and carol's BYE crosses both nodes and
// hangs up bob. n2 never parks a second call on the slot. The other way
// round (carol parks *702 on n2, bob picks it up through n1) works alike.
// Then, bob parked on *701 again: n3, without cluster.secret, answers *701
// 486 (it cannot hand the call over, and may not park a second call
// there); a park that loses the slot's claim to another node (a row n2's
// proxy cannot hand to, as when two nodes claim at once) is refused 486;
// bob's hang-up frees the slot.
func TestClusterParkPickedUpOnOtherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	nodes := startClusterWith(t, 3, func(c *Config) {
		if c.Cluster.Node != "n3" { // n3 has no secret: it cannot hand calls over
			c.Cluster.Secret = "test-cluster-secret-0123456789"
		}
		c.SIP.Voicemail.Enabled, c.SIP.Voicemail.MediaAddress = true, "127.0.0.1"
	})
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 2*settleTimeout)
	defer cancel()
	bob := newVMPhone(t, n1.addrs.SIPUDP[0], "1002")
	carol := newVMPhone(t, n2.addrs.SIPUDP[0], "1003")
	if code := carol.register(t, "1003", "1003", "carol-sip", 600); code != 200 {
		t.Fatalf("carol REGISTER on n2 = %d", code)
	}
	u, err := n1.a.store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	slotName := func(d int) string { return "s" + strconv.FormatInt(u.SiteID, 10) + "p" + strconv.Itoa(d) }

	for i, tc := range []struct {
		parker, picker     *vmPhone
		parkUser, parkPass string
		pickUser, pickPass string
		code               string
		slot               string
		holder, other      *clusterNode
	}{
		{bob, carol, "1002", "bob-sip", "1003", "carol-sip", "*701", slotName(1), n1, n2},
		{carol, bob, "1003", "carol-sip", "1002", "bob-sip", "*702", slotName(2), n2, n1},
	} {
		parkedPeer, err := vmtest.NewPeer()
		if err != nil {
			t.Fatal(err)
		}
		defer parkedPeer.Close()
		tc.parker.dial(t, ctx, tc.code, tc.parkUser, tc.parkPass, parkedPeer)
		if got := parkedPeer.Received(1, settleTimeout); len(got) == 0 {
			t.Fatalf("%s: the parked call hears nothing", tc.code)
		}
		row, err := tc.other.a.store.GetParkSlot(ctx, tc.slot)
		if err != nil {
			t.Fatalf("%s: the slot is not in the shared store: %v", tc.code, err)
		}
		if row.Node != tc.holder.name || row.Addr != tc.holder.addrs.SIPUDP[0] {
			t.Fatalf("%s: slot row %+v, want node %s at %s", tc.code, row, tc.holder.name, tc.holder.addrs.SIPUDP[0])
		}
		if age := time.Since(row.NodeSeen); row.NodeSeen.IsZero() || age > nodeDeadAfter {
			t.Fatalf("%s: the holder's heartbeat is %v old (seen %v)", tc.code, age, row.NodeSeen)
		}

		pickPeer, err := vmtest.NewPeer()
		if err != nil {
			t.Fatal(err)
		}
		defer pickPeer.Close()
		d := tc.picker.dial(t, ctx, tc.code, tc.pickUser, tc.pickPass, pickPeer)
		one, two := vm.PCMUFrames(vmtest.Ramp(10*160, 8+2*i)), vm.PCMUFrames(vmtest.Ramp(10*160, 9+2*i))
		for _, dir := range []struct {
			from, to *vmtest.Peer
			frames   [][]byte
			what     string
		}{{parkedPeer, pickPeer, one, "the parked party's audio to the other node's phone"},
			{pickPeer, parkedPeer, two, "the other node's phone's audio to the parked party"}} {
			ok := false
			for range 50 { // the first frames may race the bridge
				if err := dir.from.Send(dir.frames); err != nil {
					t.Fatal(err)
				}
				if containsRun(dir.to.Received(1<<20, 200*time.Millisecond), dir.frames) {
					ok = true
					break
				}
			}
			if !ok {
				t.Fatalf("%s: %s not relayed", tc.code, dir.what)
			}
		}
		if _, err := tc.holder.a.store.GetParkSlot(ctx, tc.slot); !errors.Is(err, prov.ErrNotFound) {
			t.Errorf("%s: slot row after the pickup: %v, want none", tc.code, err)
		}
		if err := d.Bye(ctx); err != nil {
			t.Fatalf("%s: BYE across the nodes: %v", tc.code, err)
		}
		select {
		case <-tc.parker.byes:
		case <-ctx.Done():
			t.Fatalf("%s: the parked call was not hung up when the other node's phone hung up", tc.code)
		}
		for _, m := range []struct {
			nd          *clusterNode
			name, label string
			want        float64
		}{
			{tc.other, "hotdesk_sip_proxy_park_handoffs_total", "sent", 1},
			{tc.holder, "hotdesk_sip_proxy_park_handoffs_total", "accepted", 1},
			{tc.holder, "hotdesk_voicemail_park_total", "parked", 1},
			{tc.holder, "hotdesk_voicemail_park_total", "picked_up", 1},
			{tc.other, "hotdesk_voicemail_park_total", "parked", float64(i)}, // its own, of the round before
			{tc.holder, "hotdesk_voicemail_park_claims_total", "claimed", 1},
			{tc.other, "hotdesk_voicemail_park_claims_total", "taken", 0},
		} {
			if got := metricVec(t, m.nd, m.name, m.label); got != m.want {
				t.Errorf("%s: %s %s{%s} = %v, want %v", tc.code, m.nd.name, m.name, m.label, got, m.want)
			}
		}
	}

	parkedPeer, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer parkedPeer.Close()
	parked := bob.dial(t, ctx, "*701", "1002", "bob-sip", parkedPeer)
	if got := parkedPeer.Received(1, settleTimeout); len(got) == 0 {
		t.Fatal("the parked call hears nothing")
	}
	alice := newVMPhone(t, n3.addrs.SIPUDP[0], "1001")
	if code := alice.try(t, ctx, "*701", "1001", "alice-sip"); code != 486 {
		t.Errorf("*701 on n3 without cluster.secret, parked on n1 = %d, want 486", code)
	}
	if got := metricVec(t, n3, "hotdesk_sip_proxy_park_handoffs_total", "unsigned"); got != 1 {
		t.Errorf("n3 park handoffs unsigned = %v, want 1", got)
	}
	if err := n2.a.store.ClaimParkSlot(ctx, prov.ParkedCall{Slot: slotName(3), SiteID: u.SiteID, Node: "n9",
		ParkedAt: time.Now()}, time.Now().Add(-vm.ParkTimeout), time.Now().Add(-nodeDeadAfter)); err != nil {
		t.Fatal(err)
	}
	if code := carol.try(t, ctx, "*703", "1003", "carol-sip"); code != 486 {
		t.Errorf("*703 on n2, the slot claimed by n9 = %d, want 486", code)
	}
	if got := metricVec(t, n2, "hotdesk_voicemail_park_claims_total", "taken"); got != 1 {
		t.Errorf("n2 park claims taken = %v, want 1", got)
	}
	for _, nd := range []*clusterNode{n2, n3} {
		if got := metricVec(t, nd, "hotdesk_voicemail_park_total", "parked"); got != map[string]float64{"n2": 1, "n3": 0}[nd.name] {
			t.Errorf("%s parked %v calls, want only its own of before", nd.name, got)
		}
	}
	// n9 falls silent (its last heartbeat older than nodeDeadAfter): its
	// slot is free at once, not after the park timeout.
	claimed := metricVec(t, n2, "hotdesk_voicemail_park_claims_total", "claimed")
	if err := n2.a.store.TouchNode(ctx, "n9", time.Now().Add(-2*nodeDeadAfter)); err != nil {
		t.Fatal(err)
	}
	if code := carol.try(t, ctx, "*703", "1003", "carol-sip"); code != 200 {
		t.Errorf("*703 on n2, the slot of silent n9 = %d, want 200 (parked)", code)
	}
	if got := metricVec(t, n2, "hotdesk_voicemail_park_claims_total", "claimed"); got != claimed+1 {
		t.Errorf("n2 park claims claimed = %v, want %v: the silent node's slot", got, claimed+1)
	}
	if err := parked.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slot freed when the parked call hung up", func() bool {
		_, err := n1.a.store.GetParkSlot(ctx, slotName(1))
		return errors.Is(err, prov.ErrNotFound)
	})
}
