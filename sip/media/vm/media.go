package vm

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"hotdesk/sip/media/latch"
)

const (
	frameSamples = 160 // 20 ms at 8 kHz (RFC 3551 G.711 default ptime)
	frameTime    = 20 * time.Millisecond
)

// errHangup is a call ended by the caller while media was running.
var errHangup = errors.New("vm: hung up")

// media is one call's RTP endpoint: it sends G.711 frames every 20 ms with
// RFC 3550 sequence numbers and timestamps, decodes received audio into a
// recording while one is on, and reports RFC 4733 telephone-events as
// digits.
type media struct {
	conn   *net.UDPConn
	peer   latch.Latch // the caller's RTP address: described, then learnt
	pt     uint8
	dtmfPT uint8
	m      *metrics

	ssrc uint32
	seq  uint16
	ts   uint32

	digits chan byte // buffered; a full buffer drops digits
	// relay, when set, gets every audio frame received (a parked call
	// bridged to the one that picked it up).
	relay  atomic.Pointer[media]
	sendMu sync.Mutex // orders send: the player and a relay
	// mute stops sending while the caller holds (it does not want to hear).
	mute atomic.Bool

	mu        sync.Mutex
	recording bool
	rec       []int16
	recMax    int
	recFirst  uint32
	recStart  bool
	full      chan struct{}
	lastEvent uint32 // timestamp of the last telephone-event reported
	haveEvent bool
}

func newMedia(conn *net.UDPConn, o offer, m *metrics) *media {
	var b [8]byte
	rand.Read(b[:])
	md := &media{conn: conn, pt: o.pt, dtmfPT: o.dtmf, m: m,
		ssrc: binary.BigEndian.Uint32(b[0:]), seq: binary.BigEndian.Uint16(b[4:]),
		ts: binary.BigEndian.Uint32(b[4:]), digits: make(chan byte, 16), full: make(chan struct{})}
	md.peer.Describe(o.addr)
	return md
}

// receive reads RTP until the socket is closed.
func (md *media) receive() {
	buf := make([]byte, 1500)
	for {
		n, src, err := md.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !md.peer.Heard(src) {
			// Another host: its audio or digits (a "delete" while the
			// caller listens) are not the caller's.
			md.m.rtpInvalid.Inc()
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil || p.Version != 2 {
			md.m.rtpInvalid.Inc()
			continue
		}
		md.m.rtpIn.Inc()
		switch {
		case md.dtmfPT != 0 && p.PayloadType == md.dtmfPT:
			md.event(p)
		case p.PayloadType == ptPCMU || p.PayloadType == ptPCMA:
			if r := md.relay.Load(); r != nil {
				r.sendPayload(p.PayloadType, p.Payload)
				continue
			}
			md.audio(p)
		default:
			md.m.rtpInvalid.Inc()
		}
	}
}

// event reports a telephone-event once, at its first packet: the RFC 4733
// §2.5.1.4 retransmissions of its end share its timestamp.
func (md *media) event(p rtp.Packet) {
	if len(p.Payload) < 4 || p.Payload[0] > 11 {
		return
	}
	md.mu.Lock()
	dup := md.haveEvent && md.lastEvent == p.Timestamp
	md.lastEvent, md.haveEvent = p.Timestamp, true
	md.mu.Unlock()
	if dup {
		return
	}
	d := "0123456789*#"[p.Payload[0]]
	select {
	case md.digits <- d:
	default:
	}
}

// audio adds a frame to the recording at its timestamp: a gap (lost
// packets, silence suppression) is filled with silence, a late or
// duplicated frame is dropped.
func (md *media) audio(p rtp.Packet) {
	md.mu.Lock()
	defer md.mu.Unlock()
	if !md.recording || len(md.rec) >= md.recMax {
		return
	}
	if !md.recStart {
		md.recFirst, md.recStart = p.Timestamp, true
	}
	off := int(int32(p.Timestamp - md.recFirst))
	if off < len(md.rec) || off > md.recMax {
		return
	}
	for len(md.rec) < off {
		md.rec = append(md.rec, 0)
	}
	pcm := decode(p.PayloadType, p.Payload)
	if room := md.recMax - len(md.rec); len(pcm) > room {
		pcm = pcm[:room]
	}
	md.rec = append(md.rec, pcm...)
	if len(md.rec) >= md.recMax {
		close(md.full)
	}
}

// record starts recording, up to max samples.
func (md *media) record(max int) {
	md.mu.Lock()
	md.recording, md.recMax, md.rec = true, max, md.rec[:0]
	md.mu.Unlock()
}

// stopRecording ends the recording and returns it.
func (md *media) stopRecording() []int16 {
	md.mu.Lock()
	defer md.mu.Unlock()
	md.recording = false
	return md.rec
}

// play sends pcm paced at 20 ms a frame. beforeLast runs before the last
// frame is sent (recording starts there, so a caller who waits for the
// greeting to end loses nothing). With interrupt, a digit stops playback
// and is returned; 0 means it played to the end.
func (md *media) play(ctx context.Context, done <-chan struct{}, pcm []int16, interrupt bool, beforeLast func()) (byte, error) {
	t := time.NewTicker(frameTime)
	defer t.Stop()
	frames := (len(pcm) + frameSamples - 1) / frameSamples
	for i := range frames {
		if i == frames-1 && beforeLast != nil {
			beforeLast()
		}
		frame := make([]int16, frameSamples)
		copy(frame, pcm[i*frameSamples:])
		md.send(frame, i == 0)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-done:
			return 0, errHangup
		case d := <-md.digitsIf(interrupt):
			return d, nil
		case <-t.C:
		}
	}
	if frames == 0 && beforeLast != nil {
		beforeLast()
	}
	return 0, nil
}

func (md *media) digitsIf(on bool) <-chan byte {
	if on {
		return md.digits
	}
	return nil
}

// sendPayload sends a frame received on the other leg, transcoded when
// the legs negotiated different G.711 laws.
func (md *media) sendPayload(pt uint8, payload []byte) {
	if len(payload) == 0 || len(payload) > 1200 {
		return
	}
	if pt == md.pt {
		md.sendMu.Lock()
		md.sendRaw(payload, false)
		md.sendMu.Unlock()
		return
	}
	md.send(decode(pt, payload), false)
}

// send sends one frame; marker starts a talkspurt (RFC 3551 §4.1).
func (md *media) send(frame []int16, marker bool) {
	md.sendMu.Lock()
	defer md.sendMu.Unlock()
	md.sendRaw(encode(md.pt, frame), marker)
}

func (md *media) sendRaw(payload []byte, marker bool) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, Marker: marker, PayloadType: md.pt, SequenceNumber: md.seq,
		Timestamp: md.ts, SSRC: md.ssrc}, Payload: payload}
	md.ts += uint32(len(payload))
	if md.mute.Load() {
		return // the clock runs on (RFC 3550 §5.1), the sequence only counts packets sent
	}
	md.seq++
	b, err := p.Marshal()
	if err != nil {
		return
	}
	peer := md.peer.Get()
	if peer == nil {
		return
	}
	if _, err := md.conn.WriteToUDPAddrPort(b, *peer); err == nil {
		md.m.rtpOut.Inc()
	}
}

// wait waits for a digit, the caller's hangup, a full recording or d.
func (md *media) wait(ctx context.Context, done <-chan struct{}, d time.Duration) (byte, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-done:
		return 0, errHangup
	case dg := <-md.digits:
		return dg, nil
	case <-md.full:
		return 0, nil
	case <-t.C:
		return 0, nil
	}
}

// tone is ms milliseconds of a sine-free square-ish beep: the built-in
// greeting and the record beep, so voicemail works without any prompt files.
func tone(ms int, hz int) []int16 {
	n := ms * 8
	out := make([]int16, n)
	half := 8000 / hz / 2
	for i := range out {
		if (i/half)%2 == 0 {
			out[i] = 6000
		} else {
			out[i] = -6000
		}
	}
	return out
}
