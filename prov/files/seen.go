package files

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"hotdesk/prov"
)

// seenWriter records when and from where devices were last seen, off the
// request path: a fetch only notes it, and one goroutine at a time writes
// everything noted so far in one transaction (group commit). A boot storm
// of known phones so costs a few transactions, not one per phone, and no
// request waits for the single SQLite writer.
type seenWriter struct {
	store    prov.Store
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	last    map[string]seenRec // what was last noted, per MAC
	pending map[string]seenRec // noted, not yet written
	running bool
	closed  bool
	wg      sync.WaitGroup
}

// seenRec is when and from where a device was seen.
type seenRec struct {
	at time.Time
	ip string
	// addr is ip parsed: compared on every fetch without formatting it.
	addr netip.Addr
}

// maxSeenBatch bounds one transaction, so other writers (enrollment,
// sessions, bindings) wait for the writer connection at most that long.
const maxSeenBatch = 256

// maxSeenTracked bounds the memory of last-noted times.
const maxSeenTracked = 100000

func newSeenWriter(st prov.Store, log *slog.Logger, interval time.Duration) *seenWriter {
	return &seenWriter{store: st, log: log, interval: interval, last: map[string]seenRec{}, pending: map[string]seenRec{}}
}

// note records a write already made (the device was just created with it).
func (w *seenWriter) note(mac string, at time.Time, ip string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) >= maxSeenTracked {
		clear(w.last)
	}
	addr, _ := netip.ParseAddr(ip)
	w.last[mac] = seenRec{at: at, ip: ip, addr: addr}
}

// touch queues a last-seen write for mac unless one was queued less than
// the interval ago from the same address.
func (w *seenWriter) touch(mac string, at time.Time, addr netip.Addr) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if last, ok := w.last[mac]; ok && at.Sub(last.at) < w.interval && last.addr == addr {
		return
	}
	if len(w.last) >= maxSeenTracked {
		clear(w.last)
	}
	ip := ""
	if addr.IsValid() {
		ip = addr.String()
	}
	rec := seenRec{at: at, ip: ip, addr: addr}
	w.last[mac] = rec
	if w.closed {
		return
	}
	w.pending[mac] = rec
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go w.run()
	}
}

// run writes batches until nothing is pending.
func (w *seenWriter) run() {
	defer w.wg.Done()
	for {
		batch := w.take()
		if len(batch) == 0 {
			return
		}
		w.write(batch)
	}
}

// take removes up to maxSeenBatch pending records; when there are none it
// marks the writer stopped (under the same lock, so no record is left).
func (w *seenWriter) take() map[string]seenRec {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		w.running = false
		return nil
	}
	batch := make(map[string]seenRec, min(len(w.pending), maxSeenBatch))
	for mac, rec := range w.pending {
		batch[mac] = rec
		delete(w.pending, mac)
		if len(batch) == maxSeenBatch {
			break
		}
	}
	return batch
}

// write stores a batch in one transaction; the statement keeps a later
// sighting another node recorded, and touches no other column.
func (w *seenWriter) write(batch map[string]seenRec) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := w.store.WithTx(ctx, func(tx prov.Store) error {
		for mac, rec := range batch {
			if err := tx.NoteDeviceSeen(ctx, mac, rec.at, rec.ip); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.log.Debug("record last seen", "devices", len(batch), "err", err)
	}
}

// close writes what is pending and stops queuing more.
func (w *seenWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.wg.Wait()
	for batch := w.take(); len(batch) > 0; batch = w.take() {
		w.write(batch)
	}
}

// touch records when and from where a device was last seen, at most once
// per SeenInterval per device so that a fetch storm does not become a
// write storm; the write itself happens off the request path.
func (f *Files) touch(d prov.Device, req Request) {
	var addr netip.Addr
	if req.Remote.IsValid() {
		addr = req.Remote.Addr().Unmap()
	}
	f.seen.touch(d.MAC, f.now(), addr)
}
