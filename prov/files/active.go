package files

import (
	"context"

	"hotdesk/prov"
)

// activeRead is a device's active session as one fetch reads it: once,
// shared by the reboot signals (Desk.Fetched), the credentials' hand-out
// and the view, which read it three times before (9 % of the daemon's CPU
// in a boot storm). A session event about the device since the read — the
// fetch's own bookkeeping may end a session — makes the next use read it
// again, so each decision sees what it saw before.
type activeRead struct {
	f    *Files
	id   int64
	gen  uint64 // the cache generation noted before the read
	done bool
	s    prov.Session
	ok   bool
}

func (f *Files) activeRead(id int64) *activeRead { return &activeRead{f: f, id: id} }

// fetchState is what one read of a device's file allocates: its session
// read and, when the cache has the file, the Content answered (which keeps
// the whole alive while it is used, a few hundred bytes).
type fetchState struct {
	act     activeRead
	content Content
}

// get returns the device's first active session row (ok false: none), as
// Sessions.ActiveOn does; callers check Session.Active as before.
func (a *activeRead) get(ctx context.Context) (prov.Session, bool, error) {
	if a.done && a.f.cache.sessionsValid(a.gen, a.id) {
		return a.s, a.ok, nil
	}
	if a.id != 0 {
		// The entry's own generation, as if read then: an event since makes
		// the next use look again, and a view built on it is not kept.
		if e, ok := a.f.cache.active(a.id); ok {
			a.done, a.gen, a.s, a.ok = true, e.gen, prov.Session{}, e.s != nil
			if e.s != nil {
				a.s = *e.s
			}
			return a.s, a.ok, nil
		}
	}
	gen := a.f.cache.generation()
	ss, err := a.f.store.ListSessions(ctx, prov.SessionQuery{DeviceID: a.id, ActiveOnly: true, Limit: 1})
	if err != nil {
		a.done = false
		return prov.Session{}, false, err
	}
	a.done, a.gen, a.s, a.ok = true, gen, prov.Session{}, false
	var keep *prov.Session
	if len(ss) > 0 {
		a.s, a.ok = ss[0], true
		keep = &ss[0]
	}
	if a.id != 0 {
		a.f.cache.putActive(a.id, keep, gen)
	}
	return a.s, a.ok, nil
}
