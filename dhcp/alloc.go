package dhcp

import (
	"errors"
	"net/netip"
	"sync"
	"time"
)

// ErrExhausted means a pool has no free address for a new client.
var ErrExhausted = errors.New("dhcp: pool exhausted")

// entry states in the allocator.
const (
	stOffered uint8 = iota + 1
	stBound
	stDeclined
)

// entry is one address held by the allocator.
type entry struct {
	mac      string // "" for declined addresses
	ip       uint32
	pool     int
	expires  time.Time
	state    uint8
	hostname string
	vendor   string
	queued   bool // in its pool's expiry queue, at qi
	qi       int
}

// allocator hands out addresses. One mutex guards every pool: an allocation
// takes microseconds, and a single lock is what makes "never the same address
// to two clients" easy to see and to test under concurrent DISCOVERs.
type allocator struct {
	mu     sync.Mutex
	pools  []poolSettings
	resv   map[string]reservation
	resvIP map[uint32]string
	byMAC  map[string]*entry
	byIP   map[uint32]*entry
	spaces []*space // per pool: its dynamic range's free index (nil: none)
}

func newAllocator(pools []poolSettings, resv map[string]reservation) *allocator {
	a := &allocator{pools: pools, resv: resv, resvIP: map[uint32]string{},
		byMAC: map[string]*entry{}, byIP: map[uint32]*entry{}, spaces: make([]*space, len(pools))}
	for mac, r := range resv {
		a.resvIP[addrU32(r.ip)] = mac
	}
	for i, p := range pools {
		if p.start.IsValid() {
			a.spaces[i] = newSpace(addrU32(p.start), addrU32(p.end))
		}
	}
	// A reserved address is never for anyone else.
	for ip := range a.resvIP {
		for _, sp := range a.spaces {
			if sp != nil {
				sp.mark(ip, true)
			}
		}
	}
	return a
}

// load restores persisted leases; a lease that conflicts with a reservation
// or with a later-expiring lease of the same address is dropped.
func (a *allocator) load(leases []Lease) (loaded int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range leases {
		pool := a.poolOf(l.IP)
		if pool < 0 || l.MAC == "" && l.State != StateDeclined {
			continue
		}
		ip := addrU32(l.IP)
		if owner, ok := a.resvIP[ip]; ok && owner != l.MAC {
			continue
		}
		if old := a.byIP[ip]; old != nil {
			if !l.Expires.After(old.expires) {
				continue
			}
			a.drop(old)
		}
		e := &entry{ip: ip, pool: pool, expires: l.Expires, state: stBound, hostname: l.Hostname, vendor: l.VendorClass}
		if l.State == StateDeclined {
			e.state = stDeclined
		} else {
			if old := a.byMAC[l.MAC]; old != nil {
				a.drop(old)
			}
			e.mac = l.MAC
			a.byMAC[l.MAC] = e
		}
		a.byIP[ip] = e
		a.installed(e)
		loaded++
	}
	return loaded
}

// poolOf returns the index of the pool whose subnet holds ip, or -1.
func (a *allocator) poolOf(ip netip.Addr) int {
	for i, p := range a.pools {
		if p.subnet.Contains(ip) {
			return i
		}
	}
	return -1
}

// drop forgets e in both indexes.
func (a *allocator) drop(e *entry) {
	if a.byIP[e.ip] == e {
		delete(a.byIP, e.ip)
		a.vacated(e.pool, e.ip)
	}
	if e.mac != "" && a.byMAC[e.mac] == e {
		delete(a.byMAC, e.mac)
	}
}

// free reports whether ip in pool may be given to mac now.
func (a *allocator) free(ip uint32, mac string, now time.Time) bool {
	if owner, ok := a.resvIP[ip]; ok && owner != mac {
		return false
	}
	e := a.byIP[ip]
	return e == nil || e.mac == mac && e.state != stDeclined || !e.expires.After(now)
}

// inRange reports whether ip is in pool's dynamic range.
func (a *allocator) inRange(pool int, ip uint32) bool {
	p := a.pools[pool]
	return p.start.IsValid() && ip >= addrU32(p.start) && ip <= addrU32(p.end)
}

// offer picks an address for mac in pool and holds it until now+hold.
// fresh is true when the address was not the client's before (a candidate for
// ping-before-offer).
func (a *allocator) offer(mac string, pool int, requested netip.Addr, now time.Time, hold time.Duration) (ip netip.Addr, fresh bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.resv[mac]; ok && r.pool == pool {
		return r.ip, false, a.hold(mac, pool, addrU32(r.ip), now, hold)
	}
	if e := a.byMAC[mac]; e != nil && e.pool == pool && a.byIP[e.ip] == e && a.inRange(pool, e.ip) {
		return u32Addr(e.ip), false, a.hold(mac, pool, e.ip, now, hold)
	}
	if requested.IsValid() && a.poolOf(requested) == pool {
		if r := addrU32(requested); a.inRange(pool, r) && a.free(r, mac, now) {
			return requested, true, a.hold(mac, pool, r, now, hold)
		}
	}
	sp := a.spaceOf(pool)
	if sp == nil {
		return netip.Addr{}, false, ErrExhausted
	}
	a.reclaim(pool, now)
	// The index agrees with free(); the check stays as a guard, and a
	// disagreement only marks the address busy, so this ends.
	for range 8 {
		ip, ok := sp.next()
		if !ok {
			return netip.Addr{}, false, ErrExhausted
		}
		if a.free(ip, mac, now) {
			return u32Addr(ip), true, a.hold(mac, pool, ip, now, hold)
		}
		sp.mark(ip, true)
	}
	return netip.Addr{}, false, ErrExhausted
}

// hold records ip as offered to mac, unless mac already has it bound.
func (a *allocator) hold(mac string, pool int, ip uint32, now time.Time, hold time.Duration) error {
	e := a.byMAC[mac]
	if e != nil && e.ip == ip && e.state == stBound && e.expires.After(now) {
		return nil
	}
	if e != nil && e.ip == ip && e.state == stOffered && a.byIP[ip] == e {
		// A repeated DISCOVER extends its offer: no new entry (and queue
		// item) per packet.
		e.expires = now.Add(hold)
		a.installed(e)
		return nil
	}
	a.take(&entry{mac: mac, ip: ip, pool: pool, state: stOffered, expires: now.Add(hold)})
	return nil
}

// take installs e, evicting whatever mac and ip had before.
func (a *allocator) take(e *entry) {
	if old := a.byIP[e.ip]; old != nil {
		a.drop(old)
	}
	if e.mac != "" {
		if old := a.byMAC[e.mac]; old != nil {
			a.drop(old)
		}
		a.byMAC[e.mac] = e
	}
	a.byIP[e.ip] = e
	a.installed(e)
}

// commit binds ip to mac for the pool's lease time if ip is the client's or
// free (and in the range, or reserved for mac). ok=false means NAK.
func (a *allocator) commit(mac string, pool int, ip netip.Addr, hostname, vendor string, now time.Time) (Lease, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.poolOf(ip) != pool {
		return Lease{}, false
	}
	u := addrU32(ip)
	r, reserved := a.resv[mac]
	if reserved && r.pool == pool && r.ip != ip {
		return Lease{}, false // the client must use its reserved address
	}
	mine := reserved && r.ip == ip
	if e := a.byMAC[mac]; e != nil && e.ip == u && a.byIP[u] == e {
		mine = true
	}
	if !a.free(u, mac, now) || !mine && !a.inRange(pool, u) {
		return Lease{}, false
	}
	if reserved && r.hostname != "" {
		hostname = r.hostname
	}
	exp := now.Add(a.pools[pool].leaseTime)
	a.take(&entry{mac: mac, ip: u, pool: pool, state: stBound, expires: exp, hostname: hostname, vendor: vendor})
	return Lease{MAC: mac, IP: ip, Hostname: hostname, VendorClass: vendor, Expires: exp, State: StateBound}, true
}

// release frees ip if mac holds it.
func (a *allocator) release(mac string, ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.byMAC[mac]
	if e == nil || e.ip != addrU32(ip) {
		return false
	}
	a.drop(e)
	return true
}

// unoffer forgets an offer mac did not take (it chose another server).
func (a *allocator) unoffer(mac string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.byMAC[mac]; e != nil && e.state == stOffered {
		a.drop(e)
	}
}

// decline takes ip (held by mac) out of use until now+hold. It also serves
// ping-before-offer conflicts (mac ""). ok=false if ip is not mac's to decline.
func (a *allocator) decline(mac string, ip netip.Addr, now time.Time, hold time.Duration) (Lease, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := addrU32(ip)
	pool := a.poolOf(ip)
	if pool < 0 {
		return Lease{}, false
	}
	if mac != "" {
		e := a.byMAC[mac]
		if e == nil || e.ip != u {
			return Lease{}, false
		}
	}
	exp := now.Add(hold)
	if old := a.byIP[u]; old != nil {
		a.drop(old)
	}
	e := &entry{ip: u, pool: pool, state: stDeclined, expires: exp}
	a.byIP[u] = e
	a.installed(e)
	return Lease{MAC: mac, IP: ip, Expires: exp, State: StateDeclined}, true
}

// reservationOf returns mac's reservation, if any.
func (a *allocator) reservationOf(mac string) (reservation, bool) {
	r, ok := a.resv[mac]
	return r, ok
}

// usage counts in-use (offered, bound or declined, unexpired, or reserved)
// and free addresses of pool's dynamic range.
func (a *allocator) usage(pool int, now time.Time) (used, free int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sp := a.spaceOf(pool)
	if sp == nil {
		return 0, 0
	}
	a.reclaim(pool, now)
	return int(sp.nbusy), int(sp.size - sp.nbusy)
}
