package vm

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
)

// FuzzParseOffer: whatever SDP a caller offers, the reader never panics;
// an accepted offer names G.711 and a usable address, and the answer
// built for it reads back as the same codec and DTMF payload type.
func FuzzParseOffer(f *testing.F) {
	for _, s := range []string{
		"v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
		"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5004 RTP/AVP 8 0\r\nc=IN IP4 10.0.0.6\r\n",
		"v=0\r\nc=IN IP6 ::1\r\nm=audio 5004 RTP/AVP 8\r\nm=audio 6000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP4 10.0.0.5/127\r\nm=audio 4000 RTP/SAVP 0\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseOffer(body)
		if err != nil {
			return
		}
		if o.pt != ptPCMU && o.pt != ptPCMA {
			t.Fatalf("payload type %d accepted", o.pt)
		}
		if a := o.addr.Addr(); !o.addr.IsValid() || o.addr.Port() == 0 || a.IsUnspecified() || a.IsMulticast() {
			t.Fatalf("address %v accepted", o.addr)
		}
		if o.dtmf != 0 && (o.dtmf < 96 || o.dtmf > 127) {
			t.Fatalf("telephone-event payload type %d accepted", o.dtmf)
		}
		local := netip.MustParseAddrPort("127.0.0.1:4000")
		back, err := parseOffer(answer(local, o, 1))
		if err != nil || back.pt != o.pt || back.dtmf != o.dtmf || back.addr != local {
			t.Fatalf("our answer to %+v reads back as %+v, %v", o, back, err)
		}
	})
}

// FuzzReadWAV: whatever is uploaded as a greeting, the reader never
// panics, never returns more samples than the bytes hold, and what it
// accepts survives a write and a read unchanged.
func FuzzReadWAV(f *testing.F) {
	good := EncodeWAV([]int16{1, -2, 3, 400})
	f.Add(good)
	list := slices.Concat(good[:36], []byte("LIST\x04\x00\x00\x00abcd"), good[36:])
	f.Add(list)
	f.Add(good[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			return
		}
		if 2*len(pcm) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(pcm), len(b))
		}
		again, err := ReadWAV(bytes.NewReader(EncodeWAV(pcm)))
		if err != nil || !slices.Equal(again, pcm) {
			t.Fatalf("re-encoded WAV reads back as %d samples, %v", len(again), err)
		}
	})
}
