package tftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	pin "github.com/pin/tftp/v3"
)

// Messages sent in TFTP ERROR packets (the RFC 1350 wording). pin/tftp
// v3.1.0 always sends error code 1, so the text is what tells them apart.
const (
	msgNotFound = "File not found"
	msgAccess   = "Access violation"
	msgDiskFull = "Disk full or allocation exceeded"
	msgBusy     = "Server busy"
	msgTimeout  = "Transfer timed out"
	msgInternal = "Internal error"
)

// errTransferTimeout ends a transfer that ran past transfer_timeout.
var errTransferTimeout = errors.New("transfer timeout")

// errBusy refuses a request when max_transfers(_per_client) is reached.
var errBusy = errors.New("too many transfers")

// errRateLimited refuses a request beyond request_rate_per_client.
var errRateLimited = errors.New("too many requests from this address")

// errUnacknowledged refuses a read while the client has
// max_unacknowledged_per_client reads whose first block it has not
// acknowledged: the requests may carry a victim's spoofed address.
var errUnacknowledged = errors.New("earlier transfer not acknowledged")

// wireError is an error whose Error() is the message the client sees; the
// cause stays available to errors.Is and the log.
type wireError struct {
	msg   string
	cause error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.cause }

// classify maps a handler error to a result label and the client's message.
// Reads answer "File not found" for missing and forbidden alike.
func classify(op string, err error) (result, msg string) {
	switch {
	case err == nil:
		return resOK, ""
	case errors.Is(err, ErrInvalidName):
		if op == opRead {
			return resInvalidName, msgNotFound
		}
		return resInvalidName, msgAccess
	case errors.Is(err, ErrNotFound):
		return resNotFound, msgNotFound
	case errors.Is(err, ErrForbidden):
		if op == opRead {
			return resForbidden, msgNotFound
		}
		return resForbidden, msgAccess
	case errors.Is(err, ErrTooLarge):
		return resTooLarge, msgDiskFull
	case errors.Is(err, errBusy):
		return resBusy, msgBusy
	case errors.Is(err, errRateLimited), errors.Is(err, errUnacknowledged):
		// The ERROR packet is no larger than the request: nothing to reflect.
		return resRefused, msgBusy
	case errors.Is(err, errTransferTimeout):
		return resTimeout, msgTimeout
	default:
		return resError, msgInternal
	}
}

// wire wraps err for the client; a nil err stays nil.
func wire(op string, err error) error {
	if err == nil {
		return nil
	}
	var we *wireError
	if errors.As(err, &we) {
		return err
	}
	_, msg := classify(op, err)
	return &wireError{msg: msg, cause: err}
}

// transfer is the bookkeeping shared by one read or write.
type transfer struct {
	s        *Server
	op       string
	name     string
	remote   netip.AddrPort
	start    time.Time
	deadline time.Time
	bytes    int64
	settled  bool // a read's first block was acknowledged, or it ended
}

// settle releases the read's unacknowledged slot once.
func (t *transfer) settle() {
	if !t.settled {
		t.settled = true
		t.s.settle(t.remote.Addr())
	}
}

func (s *Server) begin(op, raw string, t any) *transfer {
	start := s.now()
	return &transfer{s: s, op: op, name: raw, remote: remoteOf(t), start: start,
		deadline: start.Add(s.cfg.TransferTimeout)}
}

// check fails once the transfer has run past transfer_timeout.
func (t *transfer) check() error {
	if t.s.now().After(t.deadline) {
		return &wireError{msg: msgTimeout, cause: errTransferTimeout}
	}
	return nil
}

// finish records metrics and a debug line; err is the transfer's outcome.
func (t *transfer) finish(err error) {
	result, _ := classify(t.op, err)
	d := t.s.now().Sub(t.start)
	t.s.m.bytes.WithLabelValues(t.op).Add(float64(t.bytes))
	t.s.m.duration.WithLabelValues(t.op, result).Observe(d.Seconds())
	t.s.m.requests.WithLabelValues(t.op, result).Inc() // last: tests wait on it
	// Guarded: its arguments cost five allocations per transfer even when
	// debug lines are off.
	if t.s.log.Enabled(context.Background(), slog.LevelDebug) {
		t.s.log.Debug("tftp transfer", "op", t.op, "name", t.name, "remote", t.remote.String(),
			"result", result, "bytes", t.bytes, "duration", d, "err", err)
	}
}

// read serves one read request (RRQ).
func (s *Server) read(base context.Context, raw string, rf io.ReaderFrom) (err error) {
	t := s.begin(opRead, raw, rf)
	defer func() { t.finish(err); err = wire(opRead, err) }()
	name, err := CleanName(raw)
	if err != nil {
		return err
	}
	t.name = name
	if err := s.admit(t.remote.Addr(), true); err != nil {
		s.refused(err)
		return err
	}
	defer s.release(t.remote.Addr())
	defer t.settle()
	ctx, cancel := context.WithDeadline(base, t.deadline)
	defer cancel()
	f, err := s.fs.Open(ctx, name, t.remote)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	if size := f.Size(); size >= 0 {
		if ot, ok := rf.(pin.OutgoingTransfer); ok {
			ot.SetSize(size) // answers tsize; a no-op when it was not asked
		}
	}
	br := s.bufs.Get().(*bufio.Reader)
	br.Reset(f)
	defer func() { br.Reset(nil); s.bufs.Put(br) }()
	// The wrapper hides any io.Seeker, so pin/tftp uses the size set above.
	_, err = rf.ReadFrom(&deadlineReader{t: t, r: br})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// write receives one write request (WRQ) into an Upload that is committed
// only when every byte arrived within the limits.
func (s *Server) write(base context.Context, raw string, wt io.WriterTo) (err error) {
	t := s.begin(opWrite, raw, wt)
	defer func() { t.finish(err); err = wire(opWrite, err) }()
	name, err := CleanName(raw)
	if err != nil {
		return err
	}
	t.name = name
	if it, ok := wt.(pin.IncomingTransfer); ok {
		if n, ok := it.Size(); ok && n > s.cfg.MaxUploadBytes {
			return fmt.Errorf("announced tsize %d > %d: %w", n, s.cfg.MaxUploadBytes, ErrTooLarge)
		}
	}
	if err := s.admit(t.remote.Addr(), false); err != nil {
		s.refused(err)
		return err
	}
	defer s.release(t.remote.Addr())
	ctx, cancel := context.WithDeadline(base, t.deadline)
	defer cancel()
	up, err := s.fs.Create(ctx, name, t.remote)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if _, err = wt.WriteTo(&limitWriter{t: t, w: up, max: s.cfg.MaxUploadBytes}); err != nil {
		up.Abort()
		return fmt.Errorf("receive: %w", err)
	}
	// Commit before returning: pin/tftp sends the final ACK only after the
	// handler returns nil, so the client learns of success only once stored.
	if err := up.Commit(); err != nil {
		s.log.Warn("tftp upload not committed", "name", name, "remote", t.remote.String(), "err", err)
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// deadlineReader counts bytes, enforces transfer_timeout between blocks and
// notices the client's first ACK. In octet mode pin/tftp reads each block
// with one io.ReadFull into a buffer of blksize (at least 512) bytes, which
// Read fills whole; so a second Read means block 1 was acknowledged. In
// netascii mode pin/tftp reads 256 bytes ahead and the ACK cannot be told
// apart: the read stays unacknowledged until it ends.
type deadlineReader struct {
	t     *transfer
	r     io.Reader
	calls int
	ascii bool
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if err := d.t.check(); err != nil {
		return 0, err
	}
	d.calls++
	switch {
	case d.calls == 1:
		d.ascii = len(p) < 512
	case !d.ascii:
		d.t.settle()
	}
	var n int
	var err error
	if d.ascii {
		n, err = d.r.Read(p)
	} else if n, err = io.ReadFull(d.r, p); errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	d.t.bytes += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, wire(opRead, err)
	}
	return n, err
}

// limitWriter enforces max_upload_bytes and transfer_timeout. Its errors'
// text goes to the client in the ERROR packet pin/tftp sends.
type limitWriter struct {
	t   *transfer
	w   io.Writer
	max int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if err := l.t.check(); err != nil {
		return 0, err
	}
	if l.t.bytes+int64(len(p)) > l.max {
		return 0, &wireError{msg: msgDiskFull,
			cause: fmt.Errorf("upload exceeds %d bytes: %w", l.max, ErrTooLarge)}
	}
	n, err := l.w.Write(p)
	l.t.bytes += int64(n)
	if err != nil {
		return n, wire(opWrite, err)
	}
	return n, nil
}
