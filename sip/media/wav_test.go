package media

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// TestWAVTap: both sides' µ-law frames become one stereo 16-bit WAV whose
// header matches its data; a silent side gets silence; the byte budget
// stops the recording, not the call.
func TestWAVTap(t *testing.T) {
	if ulaw(0xff) != 0 || ulaw(0x7f) != 0 || ulaw(0x00) != -32124 || ulaw(0x80) != 32124 {
		t.Fatalf("µ-law decode: %d %d %d %d", ulaw(0xff), ulaw(0x7f), ulaw(0x00), ulaw(0x80))
	}
	for _, tc := range []struct {
		name                string
		browser, phone, max int
		wantFrames          int64
	}{
		{"both sides", 10, 10, 0, 10 * 160},
		{"phone silent", 12, 0, 0, 12 * 160},
		{"budget", 50, 50, 44 + 20*160*4, 20 * 160},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.wav")
			var gotBytes int64
			var gotErr error
			w, err := NewWAVTap(path, int64(tc.max), func(b int64, _ float64, err error) { gotBytes, gotErr = b, err })
			if err != nil {
				t.Fatal(err)
			}
			frame := make([]byte, 160)
			for i := range max(tc.browser, tc.phone) {
				if i < tc.browser {
					w.FromBrowser(frame)
				}
				if i < tc.phone {
					w.FromPhone(frame)
				}
			}
			w.Close()
			raw, err := os.ReadFile(path)
			if err != nil || gotErr != nil {
				t.Fatal(err, gotErr)
			}
			if string(raw[0:4]) != "RIFF" || string(raw[8:12]) != "WAVE" || binary.LittleEndian.Uint16(raw[22:]) != 2 ||
				binary.LittleEndian.Uint32(raw[24:]) != 8000 {
				t.Fatalf("header %x", raw[:44])
			}
			data := int64(binary.LittleEndian.Uint32(raw[40:]))
			if data != tc.wantFrames*4 || int64(len(raw)) != 44+data || gotBytes != int64(len(raw)) {
				t.Fatalf("data %d bytes, file %d, reported %d; want %d frames", data, len(raw), gotBytes, tc.wantFrames)
			}
		})
	}
	if _, err := NewWAVTap(filepath.Join(t.TempDir(), "no", "such", "dir.wav"), 0, nil); err == nil {
		t.Fatal("NewWAVTap in a missing directory succeeded")
	}
}
