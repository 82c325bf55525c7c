package sip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestContactKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		same bool
	}{
		{"sip:alice@EXAMPLE.com", "sip:alice@example.com", true},
		{"sip:Alice@example.com", "sip:alice@example.com", false},
		{"sip:alice@example.com;transport=TCP", "sip:alice@example.com;transport=tcp", true},
		{"sip:alice@example.com", "sip:alice@example.com:5060", false},
		{"sip:alice@example.com;foo=1", "sip:alice@example.com", true},
		{"sip:alice@example.com;maddr=1.2.3.4", "sip:alice@example.com", false},
	}
	for _, tc := range tests {
		if got := contactKey(tc.a) == contactKey(tc.b); got != tc.same {
			t.Errorf("%s vs %s: same=%v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestLocationApply(t *testing.T) {
	t.Parallel()
	var evs []Event
	l := newLocation(func(e []Event, _ []Binding, _ []BindingKey) { evs = append(evs, e...) })
	now := time.Unix(1000, 0)
	dev, sess := Owner{OwnerDevice, "d"}, Owner{OwnerSession, "s"}
	op := func(owner Owner, callID string, cseq uint32, contacts ...string) registerOp {
		o := registerOp{aor: "sip:1@x", tmpl: Binding{AOR: "sip:1@x", CallID: callID, CSeq: cseq, Owner: owner}}
		for _, c := range contacts {
			o.contacts = append(o.contacts, contactUpdate{uri: c, key: contactKey(c), expires: 60})
		}
		return o
	}
	if r, bs := l.apply(op(dev, "c1", 5, "sip:a@h1"), now); r != applyOK || len(bs) != 1 {
		t.Fatalf("add: %v %v", r, bs)
	}
	if r, _ := l.apply(op(dev, "c1", 4, "sip:a@h1"), now); r != applyOutOfOrder {
		t.Fatalf("older CSeq: %v", r)
	}
	if r, _ := l.apply(op(dev, "c1", 5, "sip:a@h1"), now); r != applyOK {
		t.Fatalf("retransmission (same CSeq): %v", r)
	}
	l.apply(op(sess, "c2", 1, "sip:a@h2"), now)
	// A wildcard removes only the sender's own bindings.
	w := op(sess, "c2", 2)
	w.wildcard = true
	if _, bs := l.apply(w, now); len(bs) != 1 || bs[0].Owner != dev {
		t.Fatalf("wildcard left %+v", bs)
	}
	// Per-AOR cap.
	var many []string
	for i := range maxBindingsPerAOR + 1 {
		many = append(many, fmt.Sprintf("sip:a@h%d", i+10))
	}
	if r, _ := l.apply(op(dev, "c3", 1, many...), now); r != applyTooMany {
		t.Fatalf("cap: %v", r)
	}
	if n := l.count(); n != 1 {
		t.Fatalf("count %d after refused op", n)
	}
	if evs[0].Kind != Registered || evs[len(evs)-1].Kind != Unregistered {
		t.Fatalf("events %v", evs)
	}
}

func TestPersisterRetries(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	store.fail = true
	m := newMetrics(prometheus.NewRegistry(), func() float64 { return 0 })
	p := newPersister(store, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	b := Binding{AOR: "sip:1@x", Contact: "sip:a@h"}
	p.enqueue([]Binding{b}, nil)
	p.flush(context.Background())
	if store.len() != 0 || testutil.ToFloat64(m.storeErrors) != 1 {
		t.Fatal("failed batch not counted")
	}
	// A newer change of the same key wins over the re-queued one.
	p.enqueue(nil, []BindingKey{b.Key()})
	store.mu.Lock()
	store.fail = false
	store.rows[b.Key()] = b
	store.mu.Unlock()
	p.flush(context.Background())
	if store.len() != 0 {
		t.Fatalf("delete lost: %d rows", store.len())
	}
}

// TestRemoveIfCopiesOnlyWhatChanges: a sweep or an unbind scans every AOR;
// with nothing to remove it allocates nothing (it copied every AOR's slice,
// the daemon's largest garbage source in a boot storm), and it removes
// exactly the matching bindings when there are some.
func TestRemoveIfCopiesOnlyWhatChanges(t *testing.T) {
	l := newLocation(func([]Event, []Binding, []BindingKey) {})
	exp := time.Now().Add(time.Hour)
	var bs []Binding
	for i := range 2000 {
		aor := fmt.Sprintf("sip:%d@hq.test", i)
		bs = append(bs, Binding{AOR: aor, Contact: "sip:a@10.0.0.1", Owner: Owner{OwnerDevice, "a"}, Expires: exp},
			Binding{AOR: aor, Contact: "sip:b@10.0.0.2", Owner: Owner{OwnerSession, fmt.Sprint(i)}, Expires: exp})
	}
	l.load(bs)
	allocs := testing.AllocsPerRun(20, func() {
		l.removeIf(func(b *Binding) bool { return b.Owner.ID == "nobody" }, Unbound, time.Now())
	})
	if allocs > 2 {
		t.Errorf("removeIf with nothing to remove: %.0f allocations per scan of 4,000 bindings", allocs)
	}
	got := l.removeIf(func(b *Binding) bool { return b.Owner == Owner{OwnerSession, "7"} }, Unbound, time.Now())
	if len(got) != 1 || got[0].AOR != "sip:7@hq.test" || l.count() != 3999 {
		t.Errorf("removed %+v, %d left; want the one session binding, 3999 left", got, l.count())
	}
}

// TestIndexesFollowEveryChange: the device and owner indexes that logouts
// use instead of a scan stay true through a contact change (RFC 5626
// instance), a removal by the sweep, a load and an unbind.
func TestIndexesFollowEveryChange(t *testing.T) {
	t.Parallel()
	l := newLocation(func([]Event, []Binding, []BindingKey) {})
	now := time.Now()
	owner := Owner{OwnerSession, "s1"}
	op := func(contact string, expires int) registerOp {
		return registerOp{aor: "sip:1001@hq.test", contacts: []contactUpdate{{uri: contact, key: contactKey(contact),
			instance: "<urn:uuid:1>", expires: expires}}, tmpl: Binding{AOR: "sip:1001@hq.test", Owner: owner,
			Device: "7", CallID: "c", CSeq: 1}}
	}
	contacts := func(bs []Binding) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Contact)
		}
		return out
	}
	l.apply(op("sip:1001@10.0.0.1:5060", 600), now)
	if r, _ := l.apply(op("sip:1001@10.0.0.1:5062", 600), now); r != applyOK {
		t.Fatal(r)
	}
	if got := contacts(l.byDevice("7", now)); len(got) != 1 || got[0] != "sip:1001@10.0.0.1:5062" {
		t.Fatalf("device 7 after a contact change: %v", got)
	}
	l.removeIf(func(b *Binding) bool { return true }, Expired, now)
	if got := l.byDevice("7", now); len(got) != 0 || len(l.devices.keys("7")) != 0 || len(l.owners.keys("session:s1")) != 0 {
		t.Fatalf("indexes after the sweep: %v %v", got, l.devices.keys("7"))
	}
	l.load([]Binding{{AOR: "sip:1001@hq.test", Contact: "sip:1001@10.0.0.1", Owner: owner, Device: "7",
		Expires: now.Add(time.Hour)}, {AOR: "sip:1002@hq.test", Contact: "sip:1002@10.0.0.2",
		Owner: Owner{OwnerDevice, "8"}, Device: "8", Expires: now.Add(time.Hour)}})
	if got := l.removeOwner(owner, now); len(got) != 1 || got[0].AOR != "sip:1001@hq.test" {
		t.Fatalf("removeOwner = %+v", got)
	}
	if len(l.byDevice("7", now)) != 0 || len(l.byDevice("8", now)) != 1 || l.count() != 1 {
		t.Fatalf("after the unbind: device 7 %v, device 8 %v, %d left", l.byDevice("7", now), l.byDevice("8", now), l.count())
	}
}
