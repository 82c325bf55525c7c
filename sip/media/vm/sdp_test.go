package vm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"testing"
)

func TestParseOffer(t *testing.T) {
	tests := []struct {
		name string
		sdp  string
		want offer
		err  bool
	}{
		{"pcmu with dtmf", "v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
			offer{addr: netip.MustParseAddrPort("10.0.0.5:4000"), pt: 0, dtmf: 101}, false},
		{"pcma first, media-level c=", "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5004 RTP/AVP 8 0\r\nc=IN IP4 10.0.0.6\r\n",
			offer{addr: netip.MustParseAddrPort("10.0.0.6:5004"), pt: 8}, false},
		{"opus and g722 only", "v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 4000 RTP/AVP 9 111\r\n", offer{}, true},
		{"no audio", "v=0\r\nc=IN IP4 10.0.0.5\r\nm=video 4000 RTP/AVP 96\r\n", offer{}, true},
		{"no address", "v=0\r\nm=audio 4000 RTP/AVP 0\r\n", offer{}, true},
		{"bad port", "v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 99999 RTP/AVP 0\r\n", offer{}, true},
		{"empty", "", offer{}, true},
		{"held (0.0.0.0)", "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n", offer{}, true},
		{"multicast", "v=0\r\nc=IN IP4 224.2.1.1/127\r\nm=audio 4000 RTP/AVP 0\r\n", offer{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOffer([]byte(tc.sdp))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("parseOffer = %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestReadWAVRefusesOtherFormats(t *testing.T) {
	good := EncodeWAV([]int16{1, -2, 3})
	if pcm, err := ReadWAV(bytes.NewReader(good)); err != nil || len(pcm) != 3 || pcm[1] != -2 {
		t.Fatalf("ReadWAV(EncodeWAV) = %v, %v", pcm, err)
	}
	stereo := bytes.Clone(good)
	stereo[22] = 2
	rate := bytes.Clone(good)
	rate[24] = 0x44 // 44100 & 0xff
	for name, b := range map[string][]byte{"stereo": stereo, "44.1 kHz": rate, "not RIFF": []byte("hello world, no wav"),
		"truncated": good[:20]} {
		if _, err := ReadWAV(bytes.NewReader(b)); !errors.Is(err, ErrWAVFormat) {
			t.Errorf("%s: %v, want ErrWAVFormat", name, err)
		}
	}
}

// TestReadWAVAllocatesWhatArrives: a header claiming the largest data
// chunk, with no audio behind it, costs the bytes that came, not the 9.6
// MB it claims (an upload of 44 bytes was enough to allocate them).
func TestReadWAVAllocatesWhatArrives(t *testing.T) {
	b := EncodeWAV(nil)
	binary.LittleEndian.PutUint32(b[40:], MaxWAVBytes&^1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	pcm, err := ReadWAV(bytes.NewReader(b))
	runtime.ReadMemStats(&after)
	if err != nil || len(pcm) != 0 {
		t.Fatalf("ReadWAV = %d samples, %v", len(pcm), err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("reading a 44-byte WAV allocated %d bytes", n)
	}
}
