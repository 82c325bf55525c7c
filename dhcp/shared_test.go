package dhcp

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// sharedLeases is one lease table two servers share, refusing a second
// bound lease on an address as the daemon's store does (unique index).
type sharedLeases struct {
	mu     sync.Mutex
	leases map[string]Lease
	now    func() time.Time
}

func (s *sharedLeases) LoadLeases(context.Context) ([]Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Lease
	for _, l := range s.leases {
		out = append(out, l)
	}
	return out, nil
}

func (s *sharedLeases) SaveLease(_ context.Context, l Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.leases {
		if o.MAC != l.MAC && o.IP == l.IP && o.State == StateBound && l.State == StateBound && o.Expires.After(s.now()) {
			return fmt.Errorf("%w: %s", ErrAddressTaken, o.MAC)
		}
	}
	s.leases[l.MAC] = l
	return nil
}

func (s *sharedLeases) DeleteLease(_ context.Context, mac string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.leases, mac)
	return nil
}

// TestTwoServersOneLeaseTable: two servers started on one lease table each
// offer the first free address; the second to be asked for it NAKs, keeps
// it out of its pool, and the client gets another address from it.
func TestTwoServersOneLeaseTable(t *testing.T) {
	shared := &sharedLeases{leases: map[string]Lease{}}
	a := newHarnessWith(t, baseConfig(), shared, nil)
	b := newHarnessWith(t, baseConfig(), shared, nil)
	shared.now = a.clk.now
	ipA := a.bind(mac(1))
	offer, _ := b.send(discoverMsg(t, mac(2)))
	if offer == nil || offer.YourIPAddr.String() != ipA {
		t.Fatalf("b offered %v, want the address a bound (%s): b does not know it", offer, ipA)
	}
	nak, _ := b.send(requestMsg(t, mac(2), ipA, testServerID))
	if nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("b answered the REQUEST for a's address with %v, want NAK", nak)
	}
	ipB := b.bind(mac(2))
	if ipB == ipA {
		t.Fatalf("both clients hold %s", ipA)
	}
	ls, _ := shared.LoadLeases(context.Background())
	seen := map[string]string{}
	for _, l := range ls {
		if l.State != StateBound {
			continue
		}
		if other, dup := seen[l.IP.String()]; dup {
			t.Fatalf("%s bound to %s and %s", l.IP, other, l.MAC)
		}
		seen[l.IP.String()] = l.MAC
	}
	if len(seen) != 2 {
		t.Fatalf("bound leases %v, want two", seen)
	}
}

// TestTwoServersLearnEachOthersLeases: a server that collides once with
// another server sharing the lease table re-reads it and skips every
// address the other holds: twenty new clients of b cost one NAK in all,
// not one each, and no address is bound twice.
func TestTwoServersLearnEachOthersLeases(t *testing.T) {
	shared := &sharedLeases{leases: map[string]Lease{}}
	a := newHarnessWith(t, baseConfig(), shared, nil)
	b := newHarnessWith(t, baseConfig(), shared, nil)
	shared.now = a.clk.now
	for i := range 20 {
		a.bind(mac(i + 1))
	}
	naks := 0
	for i := range 20 {
		hw := mac(100 + i)
		for attempt := 0; ; attempt++ {
			if attempt == 3 {
				t.Fatalf("client %d: no address after %d attempts", i, attempt)
			}
			offer, _ := b.send(discoverMsg(t, hw))
			if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
				t.Fatalf("client %d: no offer: %v", i, offer)
			}
			res, _ := b.send(requestMsg(t, hw, offer.YourIPAddr.String(), testServerID))
			if res != nil && res.MessageType() == dhcpv4.MessageTypeAck {
				break
			}
			naks++
		}
	}
	if naks > 1 {
		t.Errorf("b NAKed %d requests for addresses a holds, want at most one (then it reads the table)", naks)
	}
	if got := testutil.ToFloat64(b.srv.m.sharedReads); got != 1 {
		t.Errorf("shared reads = %v, want 1", got)
	}
	ls, _ := shared.LoadLeases(context.Background())
	seen := map[string]string{}
	for _, l := range ls {
		if l.State != StateBound {
			continue
		}
		if other, dup := seen[l.IP.String()]; dup {
			t.Fatalf("%s bound to %s and %s", l.IP, other, l.MAC)
		}
		seen[l.IP.String()] = l.MAC
	}
	if len(seen) != 40 {
		t.Fatalf("%d bound leases, want 40", len(seen))
	}
}
