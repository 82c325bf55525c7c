package media

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	"hotdesk/sip/media/g711"
)

// WAVTap records a session into a WAV file: 8 kHz, 16-bit linear PCM,
// stereo (left the browser, right the phone). Each side's 20 ms packets
// are paired and written together; a side that is silent (no packets) for
// more than maxLag frames gets silence, so the two stay roughly aligned
// and memory stays bounded. A packet is kept as its µ-law bytes only while
// it waits for the other side's, and a pair is decoded and interleaved in
// one pass straight into the output buffer. It allocates nothing per
// packet once warm: queued copies are reused from free.
type WAVTap struct {
	mu       sync.Mutex
	f        *os.File
	out      *bufio.Writer
	browser  [][]byte // µ-law payloads waiting for the phone's
	phone    [][]byte // µ-law payloads waiting for the browser's
	free     [][]byte // queued copies written and ready for reuse
	frames   int64    // stereo sample frames written
	maxBytes int64
	err      error
	closed   bool // packets after Close are dropped
	done     func(bytes int64, seconds float64, err error)
}

const maxLag = 5

// NewWAVTap creates path and records into it, stopping at maxBytes (0: no
// limit). done is called once from Close with the file's size and length.
func NewWAVTap(path string, maxBytes int64, done func(bytes int64, seconds float64, err error)) (*WAVTap, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("media: recording: %w", err)
	}
	// 32 KiB: a write syscall every ~1 s of audio rather than every packet.
	w := &WAVTap{f: f, out: bufio.NewWriterSize(f, 32<<10), maxBytes: maxBytes, done: done,
		browser: make([][]byte, 0, maxLag+1), phone: make([][]byte, 0, maxLag+1)}
	// The header's place is kept in the buffer, not written now: one
	// syscall less on the call's setup path; Close writes the real one.
	_, _ = w.out.Write(wavHeader(0)) // into an empty buffer: cannot fail
	return w, nil
}

// wavHeader is the 44-byte RIFF header for frames stereo 16-bit frames.
func wavHeader(frames int64) []byte {
	data := uint32(frames * 4)
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 2) // channels
	binary.LittleEndian.PutUint32(h[24:], 8000)
	binary.LittleEndian.PutUint32(h[28:], 8000*4)
	binary.LittleEndian.PutUint16(h[32:], 4)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)
	return h
}

// FromBrowser queues the browser's audio.
func (w *WAVTap) FromBrowser(payload []byte) { w.add(true, payload) }

// FromPhone queues the phone's audio.
func (w *WAVTap) FromPhone(payload []byte) { w.add(false, payload) }

func (w *WAVTap) add(browser bool, payload []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	// Pairs are written as soon as both sides have one, so at most one
	// side has packets waiting: if it is the other, this packet completes
	// a pair and is written from the caller's buffer, never copied.
	mine, other := &w.browser, &w.phone
	if !browser {
		mine, other = other, mine
	}
	if len(*other) > 0 {
		o := (*other)[0]
		if browser {
			w.writeLocked(payload, o)
		} else {
			w.writeLocked(o, payload)
		}
		w.free = append(w.free, o)
		*other = popFront(*other)
		return
	}
	*mine = append(*mine, append(w.frameLocked(), payload...))
	if len(*mine) > maxLag { // the other side is silent
		for _, f := range *mine {
			if browser {
				w.writeLocked(f, nil)
			} else {
				w.writeLocked(nil, f)
			}
			w.free = append(w.free, f)
		}
		*mine = (*mine)[:0]
	}
}

// frameLocked is an empty buffer for a queued payload, reused when one is
// free.
func (w *WAVTap) frameLocked() []byte {
	if k := len(w.free); k > 0 {
		f := w.free[k-1]
		w.free = w.free[:k-1]
		return f[:0]
	}
	return make([]byte, 0, 160) // 20 ms of 8 kHz G.711
}

// popFront drops q's first frame in place, keeping q's array (at most
// maxLag+1 frames, so the copy is cheap).
func popFront(q [][]byte) [][]byte {
	n := copy(q, q[1:])
	q[n] = nil
	return q[:n]
}

// writeLocked writes one stereo stretch: left and right are µ-law (nil:
// silence), the shorter padded with silence.
func (w *WAVTap) writeLocked(left, right []byte) {
	if w.err != nil {
		return
	}
	n := max(len(left), len(right))
	if w.maxBytes > 0 && 44+(w.frames+int64(n))*4 > w.maxBytes {
		return // the file's budget is spent: the rest is not recorded
	}
	if w.out.Available() < n*4 {
		if w.err = w.out.Flush(); w.err != nil {
			return
		}
	}
	// Decoded straight into the writer's own buffer (a payload is at most
	// a datagram, ~1500 samples, well under its 32 KiB), so the Write
	// below only advances it.
	buf := w.out.AvailableBuffer()
	if cap(buf) < n*4 { // a writer smaller than a packet: not ours
		buf = make([]byte, n*4)
	}
	interleave(buf[:n*4], left, right)
	if _, err := w.out.Write(buf[:n*4]); err != nil {
		w.err = err
		return
	}
	w.frames += int64(n)
}

// interleave decodes left and right (µ-law) into dst as little-endian
// 16-bit stereo frames; dst holds 4 bytes per sample of the longer side,
// the shorter side's missing samples are silence. One table look-up and
// one 32-bit store per frame.
func interleave(dst, left, right []byte) {
	m := min(len(left), len(right))
	l, r := left[:m], right[:m]
	for i := range l {
		binary.LittleEndian.PutUint32(dst[i*4:], uint32(ulawPCM[l[i]])|uint32(ulawPCM[r[i]])<<16)
	}
	for i := m; i < len(left); i++ {
		binary.LittleEndian.PutUint32(dst[i*4:], uint32(ulawPCM[left[i]]))
	}
	for i := m; i < len(right); i++ {
		binary.LittleEndian.PutUint32(dst[i*4:], uint32(ulawPCM[right[i]])<<16)
	}
}

// Close writes what is queued, fixes the header and reports.
func (w *WAVTap) Close() {
	w.mu.Lock()
	for _, f := range w.browser {
		w.writeLocked(f, nil)
	}
	for _, f := range w.phone {
		w.writeLocked(nil, f)
	}
	w.browser, w.phone, w.free, w.closed = nil, nil, nil, true
	err := w.err
	if err == nil {
		err = w.out.Flush()
	}
	if err == nil {
		_, err = w.f.WriteAt(wavHeader(w.frames), 0)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	frames := w.frames
	w.mu.Unlock()
	if w.done != nil {
		w.done(44+frames*4, float64(frames)/8000, err)
	}
}

// ulawPCM is every µ-law byte decoded, as the 16-bit sample's bits: a
// read-only table computed once at start-up and never written after
// (shared by every tap, so it is not per-tap state).
var ulawPCM = func() (t [256]uint16) {
	for i := range t {
		t[i] = uint16(g711.UlawDecode(byte(i)))
	}
	return t
}()

// ulaw decodes one G.711 µ-law byte to 16-bit linear PCM.
func ulaw(b byte) int16 { return int16(ulawPCM[b]) }
