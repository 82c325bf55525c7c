package sip

import (
	"hash/maphash"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// location is the in-memory location service: AOR → bindings, sharded.
// Every change is handed to the persister (write-behind) and the event queue.
type location struct {
	seed     maphash.Seed
	shards   [64]locShard
	onChange func(ev []Event, ups []Binding, dels []BindingKey)
	// devices and owners find a handset's or a credential's bindings
	// without scanning them all: a logout looks both up, and 10,000
	// logouts at the daily logout would otherwise scan 10,000 bindings
	// each, three times.
	devices bindingIndex
	owners  bindingIndex
	// targets and contacts are the host:ports bindings are reached at and
	// name: the peers an in-dialog request without dialog state may be
	// relayed to (see proxy.inDialogTarget).
	targets  bindingIndex
	contacts bindingIndex
}

// bindingIndex maps a key of a binding (its device, its owner) to the
// bindings that have it. A key has one or a few bindings (a handset's
// lines), so each holds a keySet, not a map of its own: a map per key was
// the registrar's largest heap item in a 10,000-handset storm.
type bindingIndex struct {
	keyOf func(*Binding) string
	mu    sync.Mutex
	by    map[string]keySet
	dev   map[BindingKey]string
}

// keySet is the bindings under one index key: a short slice, or a map once
// it grows past keySetSliceMax (many phones behind one SBC share a target),
// so adding and removing stays O(1) however many share the key.
type keySet struct {
	few  []BindingKey
	many map[BindingKey]struct{}
}

const keySetSliceMax = 8

func (s keySet) len() int { return len(s.few) + len(s.many) }

func (s keySet) add(k BindingKey) keySet {
	if s.many != nil {
		s.many[k] = struct{}{}
		return s
	}
	if slices.Contains(s.few, k) {
		return s
	}
	if len(s.few) < keySetSliceMax {
		// Exact capacity: most keys have one binding for good.
		s.few = append(s.few[:len(s.few):len(s.few)], k)
		return s
	}
	s.many = make(map[BindingKey]struct{}, 2*keySetSliceMax)
	for _, o := range s.few {
		s.many[o] = struct{}{}
	}
	s.many[k] = struct{}{}
	s.few = nil
	return s
}

func (s keySet) remove(k BindingKey) keySet {
	if s.many != nil {
		delete(s.many, k)
		return s
	}
	if i := slices.Index(s.few, k); i >= 0 {
		s.few = slices.Delete(s.few, i, i+1)
	}
	return s
}

func (s keySet) appendTo(out []BindingKey) []BindingKey {
	out = append(out, s.few...)
	for k := range s.many {
		out = append(out, k)
	}
	return out
}

// note records the bindings written and removed by one change.
func (x *bindingIndex) note(ups []Binding, dels []BindingKey) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.by == nil {
		x.by, x.dev = map[string]keySet{}, map[BindingKey]string{}
	}
	for _, k := range dels {
		x.dropLocked(k)
	}
	for i := range ups {
		k, v := ups[i].Key(), x.keyOf(&ups[i])
		old, ok := x.dev[k]
		if ok && old == v {
			continue // a refresh: indexed already
		}
		if ok {
			x.dropLocked(k)
		}
		if v == "" {
			continue
		}
		x.by[v] = x.by[v].add(k)
		x.dev[k] = v
	}
}

func (x *bindingIndex) dropLocked(k BindingKey) {
	d, ok := x.dev[k]
	if !ok {
		return
	}
	delete(x.dev, k)
	if set := x.by[d].remove(k); set.len() == 0 {
		delete(x.by, d)
	} else {
		x.by[d] = set
	}
}

// has reports whether some binding is indexed under v.
func (x *bindingIndex) has(v string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return v != "" && x.by[v].len() > 0
}

// knownPeer reports whether hostport (normHostPort form) is where a
// registered binding is reached or what its Contact names.
func (l *location) knownPeer(hostport string) bool {
	return l.targets.has(hostport) || l.contacts.has(hostport)
}

// normHostPort lower-cases host:port and drops IPv6 brackets' variants
// ("" when s is no host:port).
func normHostPort(s string) string {
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" || p == "" {
		return ""
	}
	return net.JoinHostPort(strings.ToLower(h), p)
}

// contactHostPort is the host:port a binding's Contact names, with the
// transport's default port.
func contactHostPort(b *Binding) string {
	var u sip.Uri
	if err := sip.ParseUri(b.Contact, &u); err != nil || u.Host == "" {
		return ""
	}
	return normHostPort(uriHostPort(&u))
}

// keys returns the binding keys indexed under v.
func (x *bindingIndex) keys(v string) []BindingKey {
	x.mu.Lock()
	defer x.mu.Unlock()
	set := x.by[v]
	return set.appendTo(make([]BindingKey, 0, set.len()))
}

type locShard struct {
	mu   sync.RWMutex
	aors map[string][]*stored
}

// stored is a binding with its contact's comparison key, computed once.
type stored struct {
	Binding
	cmpKey string
}

func newLocation(onChange func([]Event, []Binding, []BindingKey)) *location {
	l := &location{seed: maphash.MakeSeed(), onChange: onChange,
		devices:  bindingIndex{keyOf: func(b *Binding) string { return b.Device }},
		owners:   bindingIndex{keyOf: func(b *Binding) string { return ownerKey(b.Owner) }},
		targets:  bindingIndex{keyOf: func(b *Binding) string { return normHostPort(b.Target()) }},
		contacts: bindingIndex{keyOf: contactHostPort}}
	for i := range l.shards {
		l.shards[i].aors = map[string][]*stored{}
	}
	return l
}

func (l *location) shard(aor string) *locShard {
	return &l.shards[maphash.String(l.seed, aor)%uint64(len(l.shards))]
}

// contactUpdate is one Contact of a REGISTER after expiry computation.
type contactUpdate struct {
	uri      string
	key      string // §19.1.4 comparison key
	instance string
	regID    string
	q        string
	expires  int // seconds, 0 = remove
}

// registerOp is a validated REGISTER to apply atomically to one AOR.
type registerOp struct {
	aor      string
	wildcard bool
	contacts []contactUpdate
	tmpl     Binding // CallID, CSeq, Path, Source, Transport, Local, UserAgent, Owner
}

// errOutOfOrder: same Call-ID with a lower CSeq (RFC 3261 §10.3 step 7).
type applyResult int

const (
	applyOK applyResult = iota
	applyOutOfOrder
	applyTooMany
)

// maxBindingsPerAOR bounds one AOR's bindings so no credential can fill memory.
const maxBindingsPerAOR = 32

// apply performs op and returns the AOR's bindings afterwards.
func (l *location) apply(op registerOp, now time.Time) (applyResult, []Binding) {
	s := l.shard(op.aor)
	s.mu.Lock()
	cur := s.aors[op.aor]
	// Check ordering first so a failure changes nothing (atomic).
	for _, b := range cur {
		if !op.affects(b) {
			continue
		}
		if b.CallID == op.tmpl.CallID && op.tmpl.CSeq < b.CSeq {
			s.mu.Unlock()
			return applyOutOfOrder, snapshot(cur, now)
		}
	}
	var evs []Event
	var ups []Binding
	var dels []BindingKey
	next := cur[:0:0]
	if op.wildcard {
		for _, b := range cur {
			if op.affects(b) {
				evs = append(evs, Event{Kind: Unregistered, Binding: b.Binding})
				dels = append(dels, b.Key())
			} else {
				next = append(next, b)
			}
		}
	} else {
		next = append(next, cur...)
		for _, c := range op.contacts {
			next, evs, ups, dels = applyContact(next, op, c, now, evs, ups, dels)
		}
	}
	if len(next) > maxBindingsPerAOR && len(next) > len(cur) {
		s.mu.Unlock()
		return applyTooMany, nil
	}
	if len(next) == 0 {
		delete(s.aors, op.aor)
	} else {
		s.aors[op.aor] = next
	}
	out := snapshot(next, now)
	s.mu.Unlock()
	for i := range evs {
		evs[i].At = now
	}
	l.devices.note(ups, dels)
	l.owners.note(ups, dels)
	l.targets.note(ups, dels)
	l.contacts.note(ups, dels)
	if len(evs) > 0 || len(ups) > 0 || len(dels) > 0 {
		l.onChange(evs, ups, dels)
	}
	return applyOK, out
}

// affects: a wildcard removes only the bindings of the same owner, so one
// handset's logout cannot wipe another handset of a shared AOR.
func (op registerOp) affects(b *stored) bool {
	if !op.wildcard {
		for _, c := range op.contacts {
			if c.matches(b) {
				return true
			}
		}
		return false
	}
	return b.Owner == op.tmpl.Owner
}

func (c contactUpdate) matches(b *stored) bool {
	if c.instance != "" && b.Instance == c.instance && b.RegID == c.regID {
		return true
	}
	if b.cmpKey == "" {
		b.cmpKey = contactKey(b.Contact) // under the shard's write lock
	}
	return b.cmpKey == c.key
}

func applyContact(next []*stored, op registerOp, c contactUpdate, now time.Time,
	evs []Event, ups []Binding, dels []BindingKey) ([]*stored, []Event, []Binding, []BindingKey) {
	idx := -1
	for i, b := range next {
		if c.matches(b) {
			idx = i
			break
		}
	}
	if c.expires == 0 {
		if idx >= 0 {
			old := next[idx]
			next = append(next[:idx], next[idx+1:]...)
			evs = append(evs, Event{Kind: Unregistered, Binding: old.Binding})
			dels = append(dels, old.Key())
		}
		return next, evs, ups, dels
	}
	nb := op.tmpl
	nb.Contact, nb.Instance, nb.RegID, nb.Q = c.uri, c.instance, c.regID, c.q
	nb.Expires = now.Add(time.Duration(c.expires) * time.Second)
	nb.Updated = now
	kind := Registered
	if idx >= 0 {
		old := next[idx]
		kind = Refreshed
		if old.Contact != nb.Contact {
			dels = append(dels, old.Key())
		}
		next[idx] = &stored{Binding: nb, cmpKey: c.key}
	} else {
		next = append(next, &stored{Binding: nb, cmpKey: c.key})
	}
	evs = append(evs, Event{Kind: kind, Binding: nb})
	ups = append(ups, nb)
	return next, evs, ups, dels
}

func snapshot(bs []*stored, now time.Time) []Binding {
	out := make([]Binding, 0, len(bs))
	for _, b := range bs {
		if b.Expires.After(now) {
			out = append(out, b.Binding)
		}
	}
	return out
}

// lookup returns the live bindings of aor, highest q first.
func (l *location) lookup(aor string, now time.Time) []Binding {
	s := l.shard(aor)
	s.mu.RLock()
	out := snapshot(s.aors[aor], now)
	s.mu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool { return qValue(out[i].Q) > qValue(out[j].Q) })
	return out
}

func qValue(q string) float64 {
	if q == "" {
		return 1
	}
	v, err := strconv.ParseFloat(q, 64)
	if err != nil {
		return 0
	}
	return v
}

// cutLocked removes aor's bindings for which pred is true, appending them,
// their events and their keys; the shard's write lock is held.
func (s *locShard) cutLocked(aor string, pred func(*Binding) bool, kind EventKind, now time.Time,
	removed []Binding, evs []Event, dels []BindingKey) ([]Binding, []Event, []BindingKey) {
	bs := s.aors[aor]
	keep := bs[:0:0]
	for _, b := range bs {
		if pred(&b.Binding) {
			removed = append(removed, b.Binding)
			evs = append(evs, Event{Kind: kind, Binding: b.Binding, At: now})
			dels = append(dels, b.Key())
		} else {
			keep = append(keep, b)
		}
	}
	if len(keep) == 0 {
		delete(s.aors, aor)
	} else if len(keep) != len(bs) {
		s.aors[aor] = keep
	}
	return removed, evs, dels
}

// removeIf removes every binding for which pred is true and returns them.
func (l *location) removeIf(pred func(*Binding) bool, kind EventKind, now time.Time) []Binding {
	var removed []Binding
	for i := range l.shards {
		s := &l.shards[i]
		var evs []Event
		var dels []BindingKey
		s.mu.Lock()
		for aor, bs := range s.aors {
			// Most AORs have nothing to remove: scan first, and copy only
			// where something goes (a sweep or an unbind touches every AOR).
			if !slices.ContainsFunc(bs, func(b *stored) bool { return pred(&b.Binding) }) {
				continue
			}
			removed, evs, dels = s.cutLocked(aor, pred, kind, now, removed, evs, dels)
		}
		s.mu.Unlock()
		l.cut(evs, dels)
	}
	return removed
}

// cut tells the indexes and the persister about removed bindings.
func (l *location) cut(evs []Event, dels []BindingKey) {
	l.devices.note(nil, dels)
	l.owners.note(nil, dels)
	l.targets.note(nil, dels)
	l.contacts.note(nil, dels)
	if len(evs) > 0 {
		l.onChange(evs, nil, dels)
	}
}

// load puts stored bindings in place without events or writes.
func (l *location) load(bs []Binding) {
	for i := range bs {
		b := &stored{Binding: bs[i]}
		s := l.shard(b.AOR)
		s.mu.Lock()
		s.aors[b.AOR] = append(s.aors[b.AOR], b)
		s.mu.Unlock()
	}
	l.devices.note(bs, nil)
	l.owners.note(bs, nil)
	l.targets.note(bs, nil)
	l.contacts.note(bs, nil)
}

// ownerKey is an owner as the owner index keys it.
func ownerKey(o Owner) string { return o.String() }

// removeOwner removes the bindings owner created, found through the owner
// index, with Unbound events, and returns them.
func (l *location) removeOwner(owner Owner, now time.Time) []Binding {
	byAOR := map[string][]BindingKey{}
	for _, k := range l.owners.keys(ownerKey(owner)) {
		byAOR[k.AOR] = append(byAOR[k.AOR], k)
	}
	var removed []Binding
	for aor := range byAOR {
		s := l.shard(aor)
		var evs []Event
		var dels []BindingKey
		s.mu.Lock()
		removed, evs, dels = s.cutLocked(aor, func(b *Binding) bool { return b.Owner == owner }, Unbound, now,
			removed, evs, dels)
		s.mu.Unlock()
		l.cut(evs, dels)
	}
	return removed
}

// byDevice returns the live bindings of a device, through the index.
func (l *location) byDevice(device string, now time.Time) []Binding {
	var out []Binding
	for _, k := range l.devices.keys(device) {
		s := l.shard(k.AOR)
		s.mu.RLock()
		for _, b := range s.aors[k.AOR] {
			if b.Contact == k.Contact && b.Device == device && b.Expires.After(now) {
				out = append(out, b.Binding)
			}
		}
		s.mu.RUnlock()
	}
	return out
}

// count returns the number of bindings held.
func (l *location) count() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		for _, bs := range s.aors {
			n += len(bs)
		}
		s.mu.RUnlock()
	}
	return n
}

// filter returns a copy of the live bindings for which pred is true.
func (l *location) filter(pred func(*Binding) bool, now time.Time) []Binding {
	var out []Binding
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		for _, bs := range s.aors {
			for _, b := range bs {
				if b.Expires.After(now) && pred(&b.Binding) {
					out = append(out, b.Binding)
				}
			}
		}
		s.mu.RUnlock()
	}
	return out
}

// all returns a copy of every binding, expired ones not yet swept too.
func (l *location) all() []Binding {
	return l.filter(func(*Binding) bool { return true }, time.Time{})
}

// contactKey is the RFC 3261 §19.1.4 comparison key of a contact URI:
// scheme, user and password case-sensitive, host case-insensitive, port as
// written, and the transport/user/ttl/method/maddr parameters (the others
// do not take part in the comparison).
func contactKey(s string) string {
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return s
	}
	return uriKey(&u)
}

func uriKey(u *sip.Uri) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(u.Scheme))
	b.WriteByte(':')
	b.WriteString(u.User)
	if u.Password != "" {
		b.WriteByte(':')
		b.WriteString(u.Password)
	}
	b.WriteByte('@')
	b.WriteString(strings.ToLower(u.Host))
	if u.Port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(u.Port))
	}
	for _, p := range [...]string{"transport", "user", "ttl", "method", "maddr"} {
		if v, ok := u.UriParams.Get(p); ok {
			b.WriteByte(';')
			b.WriteString(p)
			b.WriteByte('=')
			b.WriteString(strings.ToLower(v))
		}
	}
	return b.String()
}

// drop removes the bindings with keys silently: no events, no writes.
func (l *location) drop(keys []BindingKey) {
	var dels []BindingKey
	for _, k := range keys {
		s := l.shard(k.AOR)
		s.mu.Lock()
		bs := s.aors[k.AOR]
		keep := bs[:0:0]
		for _, b := range bs {
			if b.Contact == k.Contact {
				dels = append(dels, b.Key())
			} else {
				keep = append(keep, b)
			}
		}
		if len(keep) == 0 {
			delete(s.aors, k.AOR)
		} else {
			s.aors[k.AOR] = keep
		}
		s.mu.Unlock()
	}
	l.devices.note(nil, dels)
	l.owners.note(nil, dels)
	l.targets.note(nil, dels)
	l.contacts.note(nil, dels)
}
