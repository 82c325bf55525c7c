package files

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"hotdesk/prov"
)

// cacheEntry is one rendered file.
type cacheEntry struct {
	body  []byte
	etag  string
	mod   time.Time
	ctype string
	at    time.Time
	// user is the session's user name the file was rendered for ("" locked).
	user string
	http *HTTPHeader
}

func (e *cacheEntry) content(pn parsedName) *Content {
	return e.contentIn(&Content{}, pn)
}

// contentIn is content filling c, which the caller allocated (with the
// fetch's other state: one allocation).
func (e *cacheEntry) contentIn(c *Content, pn parsedName) *Content {
	*c = Content{Name: pn.name, Kind: pn.kind, Size: int64(len(e.body)),
		ModTime: e.mod, ETag: e.etag, ContentType: e.ctype, HTTP: e.http}
	c.reader.Reset(e.body)
	c.Body = &c.reader
	return c
}

// Cache keeps rendered files, devices, the store reads a View is
// built from, and sites, until an event says something changed.
//
// Events about one device (it registered, a session started or ended on
// it) drop only that device's entries: in a boot storm they arrive
// thousands of times a second and dropping everything would leave nothing
// cached. Every other event drops everything: coarse, but it cannot miss a
// dependency (a site edit changes every device of the site).
//
// gen counts invalidations. A reader notes gen before it reads the store
// and may store what it read only if no invalidation covering it happened
// since (fullGen, or the device's stripe of devGen), so a read that raced
// a change is not kept. Entries are sharded by MAC so that thousands of
// concurrent fetches do not queue on one lock.
type Cache struct {
	gen     atomic.Uint64
	fullGen atomic.Uint64
	devGen  [devGenStripes]atomic.Uint64 // by device ID modulo the stripes
	// sessGen is devGen raised by session events only: a fetch's one read
	// of the device's sessions stays good across its own device events
	// (the credentials' hand-out, a deployment).
	sessGen [devGenStripes]atomic.Uint64
	macs    sync.Map // device ID → MAC, for invalidation by ID
	shards  [cacheShards]cacheShard
	// actives are the devices' active sessions as the store last answered,
	// by device ID: every fetch needs its device's, and reading it was 7–9 %
	// of the daemon's CPU in a boot storm. Session events (this node's, and
	// the other nodes' relayed ones) drop a device's; a resync drops all.
	actives [cacheShards]activeShard

	siteMu sync.RWMutex
	sites  map[int64]siteEntry
	// siteList is every site, for placing an enrolling phone by subnet;
	// nil when not cached.
	siteList   []prov.Site
	siteListAt time.Time
	// companyList is the company directory before a viewer's scope; nil
	// when not cached.
	companyList *prov.CompanyList
	companyAt   time.Time

	ttl time.Duration
	now func() time.Time
}

// cacheShard holds the entries of the devices whose MAC hashes to it.
type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]*cacheEntry
	devKeys map[string][]string // rendered entries of a MAC
	devices map[string]deviceEntry
	views   map[string]viewEntry
	// noUploads are the owners (with the names asked) that uploaded none
	// of them: most phones and users never upload, and their views are
	// rebuilt at every registration. Only uploads change it, and storing
	// one drops everything.
	noUploads map[string]time.Time
}

const (
	defaultCacheTTL = 5 * time.Minute
	cacheShards     = 32
	// devGenStripes: an event about a device also refuses the in-flight
	// reads of the devices sharing its stripe; rare enough to ignore.
	devGenStripes = 4096
	// maxCacheEntries bounds memory: a few files per device.
	maxCacheEntries = 50000
	maxShardEntries = maxCacheEntries / cacheShards
)

// NewCache returns an empty cache; entries no event dropped are reused
// for ttl at most (0: 5 minutes), against changes made by another node.
// Built before prov.New, which subscribes OnEvent among its rules, and
// given to New in Deps.Cache.
func NewCache(ttl time.Duration, now func() time.Time) *Cache {
	if ttl <= 0 {
		ttl = defaultCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	c := &Cache{ttl: ttl, now: now, sites: map[int64]siteEntry{}}
	for i := range c.shards {
		c.shards[i].reset()
	}
	return c
}

// activeShard holds the active sessions of the devices whose ID falls in it.
type activeShard struct {
	mu sync.RWMutex
	m  map[int64]activeEntry
}

// activeEntry is a device's active session; s nil: none. A pointer, not a
// Session: most devices have none, and their entry stays small. gen is the
// generation its read started at.
type activeEntry struct {
	s   *prov.Session
	gen uint64
	at  time.Time
}

func (c *Cache) activeShard(id int64) *activeShard { return &c.actives[uint64(id)%cacheShards] }

// active returns device id's cached active session (s nil: none), as
// good as a store read at e.gen: none while a session event raced the drop
// of the entry (the generations are raised first), or touched another
// device of its stripe since.
func (c *Cache) active(id int64) (activeEntry, bool) {
	a := c.activeShard(id)
	a.mu.RLock()
	e, ok := a.m[id]
	a.mu.RUnlock()
	if !ok || !c.fresh(e.at) || !c.sessionsValid(e.gen, id) {
		return activeEntry{}, false
	}
	return e, true
}

// putActive keeps device id's active session (nil: none) read from gen on,
// unless a session event about the device or a global one came since.
func (c *Cache) putActive(id int64, s *prov.Session, gen uint64) {
	a := c.activeShard(id)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !c.sessionsValid(gen, id) {
		return
	}
	if a.m == nil || len(a.m) >= maxShardEntries {
		a.m = map[int64]activeEntry{}
	}
	a.m[id] = activeEntry{s: s, gen: gen, at: c.now()}
}

// dropActive forgets device id's active session (id 0: every device's).
func (c *Cache) dropActive(id int64) {
	if id != 0 {
		a := c.activeShard(id)
		a.mu.Lock()
		delete(a.m, id)
		a.mu.Unlock()
		return
	}
	for i := range c.actives {
		a := &c.actives[i]
		a.mu.Lock()
		a.m = nil
		a.mu.Unlock()
	}
}

func (s *cacheShard) reset() {
	s.entries = map[string]*cacheEntry{}
	s.devKeys = map[string][]string{}
	s.devices = map[string]deviceEntry{}
	s.views = map[string]viewEntry{}
	s.noUploads = map[string]time.Time{}
}

func (c *Cache) shard(mac string) *cacheShard {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(mac); i++ {
		h = (h ^ uint32(mac[i])) * 16777619
	}
	return &c.shards[h%cacheShards]
}

// OnEvent invalidates what ev may have changed (prov.FileCache).
func (c *Cache) OnEvent(_ context.Context, ev prov.Event) {
	switch ev.Kind {
	case prov.EventSoftphoneChanged:
		return // a browser's credential is in no phone's files
	case prov.EventDeviceChanged:
		if ev.Reason == reasonEnrolled {
			// A device that did not exist has nothing cached, and the
			// enrolling request may keep the row it just created.
			return
		}
	case prov.EventDeviceStatus, prov.EventSessionStarted, prov.EventSessionEnded:
		if ev.DeviceID != 0 {
			c.invalidateDevice(ev.DeviceID, ev.Kind != prov.EventDeviceStatus)
			return
		}
	}
	c.invalidate()
}

func (c *Cache) fresh(at time.Time) bool { return c.now().Sub(at) <= c.ttl }

func (c *Cache) generation() uint64 { return c.gen.Load() }

// valid reports whether a read started at gen may be stored for device id
// (0: no device). Callers hold the shard's lock, so an invalidation that
// raises a generation after this check finds and drops what they store.
func (c *Cache) valid(gen uint64, id int64) bool {
	return gen >= c.fullGen.Load() && (id == 0 || gen >= c.devGen[uint64(id)%devGenStripes].Load())
}

// invalidate drops everything.
func (c *Cache) invalidate() {
	c.fullGen.Store(c.gen.Add(1))
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.reset()
		s.mu.Unlock()
	}
	c.macs.Clear()
	c.dropActive(0)
	c.siteMu.Lock()
	clear(c.sites)
	c.siteList = nil
	c.companyList = nil
	c.siteMu.Unlock()
}

// invalidateDevice drops what is cached for the device with id; sessions
// says a session of it started or ended.
func (c *Cache) invalidateDevice(id int64, sessions bool) {
	g := c.gen.Add(1)
	raise(&c.devGen[uint64(id)%devGenStripes], g)
	if sessions {
		raise(&c.sessGen[uint64(id)%devGenStripes], g)
		c.dropActive(id)
	}
	v, ok := c.macs.Load(id)
	if !ok {
		return // nothing stored for it: every store records the MAC first
	}
	mac := v.(string)
	s := c.shard(mac)
	s.mu.Lock()
	for _, k := range s.devKeys[mac] {
		delete(s.entries, k)
	}
	delete(s.devKeys, mac)
	delete(s.devices, mac)
	delete(s.views, mac)
	s.mu.Unlock()
}

// raise sets stripe to g unless it is already past it.
func raise(stripe *atomic.Uint64, g uint64) {
	for cur := stripe.Load(); cur < g && !stripe.CompareAndSwap(cur, g); cur = stripe.Load() {
	}
}

// sessionsValid reports whether device id's sessions read at gen are still
// what the store holds, as far as this node's events tell.
func (c *Cache) sessionsValid(gen uint64, id int64) bool {
	return gen >= c.fullGen.Load() && gen >= c.sessGen[uint64(id)%devGenStripes].Load()
}

func (c *Cache) get(mac, key string) (*cacheEntry, bool) {
	s := c.shard(mac)
	s.mu.RLock()
	e, ok := s.entries[key]
	s.mu.RUnlock()
	if !ok || !c.fresh(e.at) {
		return nil, false
	}
	return e, true
}

// getKey is get with the key in a buffer: a fetch served from the cache
// builds no key string (the map index converts without allocating).
func (c *Cache) getKey(mac string, key []byte) (*cacheEntry, bool) {
	s := c.shard(mac)
	s.mu.RLock()
	e, ok := s.entries[string(key)]
	s.mu.RUnlock()
	if !ok || !c.fresh(e.at) {
		return nil, false
	}
	return e, true
}

// put stores a rendered file of device d (zero for the generic master).
func (c *Cache) put(d prov.Device, key string, e *cacheEntry, gen uint64) {
	e.at = c.now()
	if d.ID != 0 {
		c.macs.Store(d.ID, d.MAC)
	}
	s := c.shard(d.MAC)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.valid(gen, d.ID) {
		return
	}
	if len(s.entries) >= maxShardEntries {
		clear(s.entries)
		clear(s.devKeys)
	}
	if _, ok := s.entries[key]; !ok && d.ID != 0 {
		s.devKeys[d.MAC] = append(s.devKeys[d.MAC], key)
	}
	s.entries[key] = e
}

type deviceEntry struct {
	d  prov.Device
	at time.Time
}

func (c *Cache) device(mac string) (prov.Device, bool) {
	s := c.shard(mac)
	s.mu.RLock()
	e, ok := s.devices[mac]
	s.mu.RUnlock()
	if !ok || !c.fresh(e.at) {
		return prov.Device{}, false
	}
	return e.d, true
}

func (c *Cache) putDevice(d prov.Device, gen uint64) {
	c.macs.Store(d.ID, d.MAC)
	s := c.shard(d.MAC)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.valid(gen, d.ID) {
		return
	}
	if len(s.devices) >= maxShardEntries {
		clear(s.devices)
	}
	s.devices[d.MAC] = deviceEntry{d: d, at: c.now()}
}

// viewEntry is what a device's View holds beyond the device and the
// request: its site, session, user and uploads. Shared read-only.
type viewEntry struct {
	v  prov.View
	at time.Time
}

func (c *Cache) view(d prov.Device) (prov.View, bool) {
	s := c.shard(d.MAC)
	s.mu.RLock()
	e, ok := s.views[d.MAC]
	s.mu.RUnlock()
	if !ok || !c.fresh(e.at) || e.v.Device.ID != d.ID {
		return prov.View{}, false
	}
	return e.v, true
}

// putView keeps v, read from gen on, its session at sessGen.
func (c *Cache) putView(v prov.View, gen, sessGen uint64) {
	d := v.Device
	c.macs.Store(d.ID, d.MAC)
	s := c.shard(d.MAC)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.valid(gen, d.ID) || !c.sessionsValid(sessGen, d.ID) {
		return
	}
	if len(s.views) >= maxShardEntries {
		clear(s.views)
	}
	s.views[d.MAC] = viewEntry{v: v, at: c.now()}
}

// uploadsNone reports that key's owner is known to have none of key's uploads.
func (c *Cache) uploadsNone(key string) bool {
	s := c.shard(key)
	s.mu.RLock()
	at, ok := s.noUploads[key]
	s.mu.RUnlock()
	return ok && c.fresh(at)
}

// putUploadsNone records that key's owner had none of key's uploads at gen.
func (c *Cache) putUploadsNone(key string, gen uint64) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.valid(gen, 0) {
		return
	}
	if len(s.noUploads) >= maxShardEntries {
		clear(s.noUploads)
	}
	s.noUploads[key] = c.now()
}

type siteEntry struct {
	s   prov.Site
	err error
	at  time.Time
}

// site returns a cached GetSite answer (a site or ErrNotFound).
func (c *Cache) site(id int64) (siteEntry, bool) {
	c.siteMu.RLock()
	e, ok := c.sites[id]
	c.siteMu.RUnlock()
	if !ok || !c.fresh(e.at) {
		return siteEntry{}, false
	}
	return e, true
}

func (c *Cache) allSites() ([]prov.Site, bool) {
	c.siteMu.RLock()
	defer c.siteMu.RUnlock()
	if c.siteList == nil || !c.fresh(c.siteListAt) {
		return nil, false
	}
	return c.siteList, true
}

func (c *Cache) putAllSites(sites []prov.Site, gen uint64) {
	c.siteMu.Lock()
	defer c.siteMu.Unlock()
	if c.valid(gen, 0) && sites != nil {
		c.siteList, c.siteListAt = sites, c.now()
	}
}

func (c *Cache) putSite(id int64, s prov.Site, err error, gen uint64) {
	c.siteMu.Lock()
	defer c.siteMu.Unlock()
	if !c.valid(gen, 0) || len(c.sites) >= 10000 {
		return
	}
	c.sites[id] = siteEntry{s: s, err: err, at: c.now()}
}

func (c *Cache) company() (*prov.CompanyList, bool) {
	c.siteMu.RLock()
	defer c.siteMu.RUnlock()
	if c.companyList == nil || !c.fresh(c.companyAt) {
		return nil, false
	}
	return c.companyList, true
}

// putCompany keeps l unless an event covering every device (a user, a
// number or a site changed) came after gen.
func (c *Cache) putCompany(l *prov.CompanyList, gen uint64) {
	c.siteMu.Lock()
	defer c.siteMu.Unlock()
	if c.valid(gen, 0) {
		c.companyList, c.companyAt = l, c.now()
	}
}
