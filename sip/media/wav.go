package media

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
)

// WAVTap records a session into a WAV file: 8 kHz, 16-bit linear PCM,
// stereo (left the browser, right the phone). Each side's 20 ms packets
// are queued and written in pairs; a side that is silent (no packets) for
// more than maxLag frames gets silence, so the two stay roughly aligned
// and memory stays bounded. It allocates nothing per packet once warm:
// decoded frames are reused from free, and writes go through one buffer.
type WAVTap struct {
	mu       sync.Mutex
	f        *os.File
	out      *bufio.Writer
	browser  [][]int16
	phone    [][]int16
	free     [][]int16 // decoded frames written and ready for reuse
	buf      []byte    // one interleaved stereo frame
	frames   int64     // stereo sample frames written
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
		browser: make([][]int16, 0, maxLag+1), phone: make([][]int16, 0, maxLag+1)}
	if _, err := f.Write(wavHeader(0)); err != nil {
		f.Close()
		return nil, fmt.Errorf("media: recording: %w", err)
	}
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
	pcm := w.frameLocked(len(payload))
	for i, b := range payload {
		pcm[i] = ulaw(b)
	}
	mine := &w.phone
	if browser {
		mine = &w.browser
	}
	*mine = append(*mine, pcm)
	for len(w.browser) > 0 && len(w.phone) > 0 {
		w.writeLocked(w.browser[0], w.phone[0])
		w.free = append(w.free, w.browser[0], w.phone[0])
		w.browser, w.phone = popFront(w.browser), popFront(w.phone)
	}
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

// frameLocked is a decoded frame of n samples, reused when one is free.
func (w *WAVTap) frameLocked(n int) []int16 {
	if k := len(w.free); k > 0 {
		f := w.free[k-1]
		w.free = w.free[:k-1]
		if cap(f) >= n {
			return f[:n]
		}
	}
	return make([]int16, n)
}

// popFront drops q's first frame in place, keeping q's array (at most
// maxLag+1 frames, so the copy is cheap).
func popFront(q [][]int16) [][]int16 {
	n := copy(q, q[1:])
	q[n] = nil
	return q[:n]
}

func (w *WAVTap) writeLocked(left, right []int16) {
	if w.err != nil {
		return
	}
	n := max(len(left), len(right))
	if w.maxBytes > 0 && 44+(w.frames+int64(n))*4 > w.maxBytes {
		return // the file's budget is spent: the rest is not recorded
	}
	if cap(w.buf) < n*4 {
		w.buf = make([]byte, n*4)
	}
	buf := w.buf[:n*4]
	for i := range n {
		var l, r int16
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		binary.LittleEndian.PutUint16(buf[i*4:], uint16(l))
		binary.LittleEndian.PutUint16(buf[i*4+2:], uint16(r))
	}
	if _, err := w.out.Write(buf); err != nil {
		w.err = err
		return
	}
	w.frames += int64(n)
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
		if _, err = w.f.Seek(0, io.SeekStart); err == nil {
			_, err = w.f.Write(wavHeader(w.frames))
		}
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

// ulaw decodes one G.711 µ-law byte to 16-bit linear PCM.
func ulaw(b byte) int16 {
	b = ^b
	t := (int(b&0x0f) << 3) + 0x84
	t <<= (b & 0x70) >> 4
	if b&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}
