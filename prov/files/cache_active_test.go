package files

import (
	"context"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestCacheActiveSession: a device's active session is kept only from a
// read no session event about the device (nor a global one) followed, and
// is dropped by the next such event or after the cache's TTL; events about
// other devices or about the device's status leave it.
func TestCacheActiveSession(t *testing.T) {
	ctx := context.Background()
	const dev = 7
	sess := &prov.Session{ID: "s1", DeviceID: dev, UserID: 3}
	for _, tt := range []struct {
		name   string
		before []prov.Event // between the read's generation and its put
		after  []prov.Event // after the put
		age    time.Duration
		kept   bool
	}{
		{name: "quiet", kept: true},
		{name: "read raced a login", before: []prov.Event{{Kind: prov.EventSessionStarted, DeviceID: dev}}},
		{name: "read raced a relayed logout", before: []prov.Event{{Kind: prov.EventSessionEnded, DeviceID: dev, Remote: true}}},
		{name: "read raced a resync", before: []prov.Event{{Kind: prov.EventSiteChanged, Remote: true}}},
		{name: "read raced its registration", before: []prov.Event{{Kind: prov.EventDeviceStatus, DeviceID: dev}}, kept: true},
		{name: "logout after", after: []prov.Event{{Kind: prov.EventSessionEnded, DeviceID: dev}}},
		{name: "user changed after", after: []prov.Event{{Kind: prov.EventUserChanged, UserID: 3}}},
		{name: "another device's login after", after: []prov.Event{{Kind: prov.EventSessionStarted, DeviceID: dev + 1}}, kept: true},
		// Its entry stays, but the stripe's generation cannot tell the two
		// devices apart: read again.
		{name: "a login on a device of its stripe after", after: []prov.Event{{Kind: prov.EventSessionStarted, DeviceID: dev + devGenStripes}}},
		{name: "registered after", after: []prov.Event{{Kind: prov.EventDeviceStatus, DeviceID: dev}}, kept: true},
		{name: "enrolment after", after: []prov.Event{{Kind: prov.EventDeviceChanged, DeviceID: dev + 1, Reason: reasonEnrolled}}, kept: true},
		{name: "within the TTL", age: time.Minute, kept: true},
		{name: "past the TTL", age: 6 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_800_000_000, 0)
			c := NewCache(0, func() time.Time { return now })
			gen := c.generation()
			for _, ev := range tt.before {
				c.OnEvent(ctx, ev)
			}
			c.putActive(dev, sess, gen)
			for _, ev := range tt.after {
				c.OnEvent(ctx, ev)
			}
			now = now.Add(tt.age)
			e, ok := c.active(dev)
			if ok != tt.kept {
				t.Fatalf("kept %v, want %v", ok, tt.kept)
			}
			if ok && (e.s == nil || e.s.ID != sess.ID) {
				t.Fatalf("kept %+v, want session %s", e.s, sess.ID)
			}
		})
	}
}

// TestCacheActiveSessionBetweenRaiseAndDrop: a session event raises the
// generations before it drops the device's entry; a fetch that looks in
// between must not take the entry as current, or a view built on it would
// be kept with the ended session.
func TestCacheActiveSessionBetweenRaiseAndDrop(t *testing.T) {
	const dev = 7
	c := NewCache(0, nil)
	c.putActive(dev, &prov.Session{ID: "s1", DeviceID: dev}, c.generation())
	if _, ok := c.active(dev); !ok {
		t.Fatal("not kept")
	}
	// invalidateDevice's first half.
	raise(&c.sessGen[uint64(dev)%devGenStripes], c.gen.Add(1))
	if e, ok := c.active(dev); ok {
		t.Fatalf("entry %+v taken as current after its device's session event was raised", e.s)
	}
}

// BenchmarkActiveReadCached is a fetch's read of its device's session
// when the cache has it: no store read, no allocation beyond the read's.
func BenchmarkActiveReadCached(b *testing.B) {
	c := NewCache(0, nil)
	f := &Files{cache: c}
	c.putActive(7, &prov.Session{ID: "s1", DeviceID: 7}, c.generation())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := f.activeRead(7).get(ctx); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
