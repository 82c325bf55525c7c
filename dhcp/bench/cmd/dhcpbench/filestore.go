package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"hotdesk/dhcp"
)

// fileStore is an append-only CSV lease log, like Kea's memfile: one line per
// change ("S,mac,ip,expires,state,hostname,vendor" or "D,mac"), the last line
// of a MAC wins on load. Concurrent SaveLease calls are group-committed: one
// write(2) per batch, each caller returns once its batch is written.
type fileStore struct {
	f     *os.File
	fsync bool

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	line    []byte // the line being written (unbatched), reused
	seq     uint64 // batch now accumulating
	done    uint64 // last batch written
	err     error
	closed  bool
	flushed chan struct{}
}

func openFileStore(path string, fsync bool) (*fileStore, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lease file: %w", err)
	}
	s := &fileStore{f: f, fsync: fsync, seq: 1, flushed: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.flusher()
	return s, nil
}

// flusher writes each accumulated batch with one write(2).
func (s *fileStore) flusher() {
	defer close(s.flushed)
	for {
		s.mu.Lock()
		for len(s.pending) == 0 && !s.closed {
			s.cond.Wait()
		}
		if len(s.pending) == 0 && s.closed {
			s.mu.Unlock()
			return
		}
		buf := s.pending
		s.pending, s.spare = s.spare[:0], nil
		batch := s.seq
		s.seq++
		s.mu.Unlock()

		_, err := s.f.Write(buf)
		if err == nil && s.fsync {
			err = s.f.Sync()
		}
		s.mu.Lock()
		s.spare = buf[:0]
		s.done = batch
		if err != nil {
			s.err = err
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// appendLine queues the line build appends and waits until its batch is
// on disk.
func (s *fileStore) appendLine(build func([]byte) []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("lease file closed")
	}
	if !s.fsync {
		// One write(2) per lease, as Kea's memfile does: handing each line
		// to the flusher cost two goroutine wake-ups per ACK, more than the
		// write, and a group only pays off when an fsync follows.
		if s.err == nil {
			s.line = build(s.line[:0])
			_, s.err = s.f.Write(s.line)
		}
		return s.err
	}
	s.pending = build(s.pending)
	my := s.seq
	s.cond.Broadcast()
	for s.done < my && s.err == nil {
		s.cond.Wait()
	}
	return s.err
}

// SaveLease appends "S,mac,ip,expires,state,hostname,vendor" (formatted in
// place: fmt.Sprintf and a strings.Replacer built per field were the
// store's own garbage per ACK).
func (s *fileStore) SaveLease(_ context.Context, l dhcp.Lease) error {
	return s.appendLine(func(b []byte) []byte {
		b = append(append(append(b, "S,"...), l.MAC...), ',')
		b = append(l.IP.AppendTo(b), ',')
		b = append(strconv.AppendInt(b, l.Expires.Unix(), 10), ',')
		b = append(append(b, l.State...), ',')
		b = append(appendCSV(b, l.Hostname), ',')
		return append(appendCSV(b, l.VendorClass), '\n')
	})
}

func (s *fileStore) DeleteLease(_ context.Context, mac string) error {
	return s.appendLine(func(b []byte) []byte { return append(append(append(b, "D,"...), mac...), '\n') })
}

func (s *fileStore) LoadLeases(context.Context) ([]dhcp.Lease, error) {
	if _, err := s.f.Seek(0, 0); err != nil {
		return nil, err
	}
	byMAC := map[string]dhcp.Lease{}
	sc := bufio.NewScanner(s.f)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		switch {
		case len(f) == 2 && f[0] == "D":
			delete(byMAC, f[1])
		case len(f) == 7 && f[0] == "S":
			ip, err1 := netip.ParseAddr(f[2])
			exp, err2 := strconv.ParseInt(f[3], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			byMAC[f[1]] = dhcp.Lease{MAC: f[1], IP: ip, Expires: time.Unix(exp, 0), State: f[4], Hostname: f[5], VendorClass: f[6]}
		}
	}
	out := make([]dhcp.Lease, 0, len(byMAC))
	for _, l := range byMAC {
		out = append(out, l)
	}
	return out, sc.Err()
}

// Close writes what is queued and closes the file.
func (s *fileStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.flushed
	return s.f.Close()
}

// appendCSV appends v with its commas and newlines made spaces.
func appendCSV(b []byte, v string) []byte {
	for i := range len(v) {
		c := v[i]
		if c == ',' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}
