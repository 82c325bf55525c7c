package media

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"hotdesk/sip/media/g711"
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

// TestWAVTapSamplesAndAllocs: each side's samples land in its channel in
// order (frames reused across packets must not mix them up), a late side
// is padded with silence, and a warm tap allocates nothing per packet.
func TestWAVTapSamplesAndAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.wav")
	w, err := NewWAVTap(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	frame := func(b byte) []byte {
		f := make([]byte, 160)
		for i := range f {
			f[i] = b
		}
		return f
	}
	// µ-law 0x00..0x0f decode to distinct loud samples; browser i, phone 0x80|i.
	const pairs = 8
	for i := range pairs {
		w.FromBrowser(frame(byte(i)))
		w.FromPhone(frame(0x80 | byte(i)))
	}
	for i := range maxLag + 1 { // the phone falls silent: the browser is written alone
		w.FromBrowser(frame(byte(pairs + i)))
	}
	bf, pf := frame(1), frame(0x81)
	allocs := testing.AllocsPerRun(200, func() { w.FromBrowser(bf); w.FromPhone(pf) })
	w.Close()
	w.FromPhone(pf) // after Close: dropped, no panic
	if allocs != 0 {
		t.Errorf("%v allocations per packet pair, want 0", allocs)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sample := func(frame, ch int) int16 {
		return int16(binary.LittleEndian.Uint16(raw[44+(frame*160)*4+ch*2:]))
	}
	for i := range pairs {
		if l, r := sample(i, 0), sample(i, 1); l != ulaw(byte(i)) || r != ulaw(0x80|byte(i)) {
			t.Fatalf("frame %d: left %d right %d, want %d %d", i, l, r, ulaw(byte(i)), ulaw(0x80|byte(i)))
		}
	}
	for i := range maxLag + 1 {
		if l, r := sample(pairs+i, 0), sample(pairs+i, 1); l != ulaw(byte(pairs+i)) || r != 0 {
			t.Fatalf("silent phone frame %d: left %d right %d", i, l, r)
		}
	}
	if want := 44 + (pairs+maxLag+1+201)*160*4; len(raw) != want {
		t.Fatalf("file %d bytes, want %d", len(raw), want)
	}
}

// TestWAVTapDecode: every µ-law byte lands in the file as G.711's linear
// sample, in its own channel, and a pair of unequal packets is padded with
// silence on the shorter side, whichever side that is.
func TestWAVTapDecode(t *testing.T) {
	all, rev := make([]byte, 256), make([]byte, 256)
	for i := range all {
		all[i], rev[i] = byte(i), byte(255-i)
	}
	for _, tc := range []struct {
		name           string
		browser, phone []byte
	}{
		{"every byte both sides", all, rev},
		{"browser longer", all, rev[:100]},
		{"phone longer", all[:7], rev},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.wav")
			w, err := NewWAVTap(path, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			w.FromBrowser(tc.browser)
			w.FromPhone(tc.phone)
			w.Close()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n := max(len(tc.browser), len(tc.phone))
			if len(raw) != 44+n*4 {
				t.Fatalf("file %d bytes, want %d", len(raw), 44+n*4)
			}
			want := func(p []byte, i int) int16 {
				if i < len(p) {
					return g711.UlawDecode(p[i])
				}
				return 0
			}
			for i := range n {
				l, r := int16(binary.LittleEndian.Uint16(raw[44+i*4:])), int16(binary.LittleEndian.Uint16(raw[44+i*4+2:]))
				if l != want(tc.browser, i) || r != want(tc.phone, i) {
					t.Fatalf("sample %d: left %d right %d, want %d %d", i, l, r, want(tc.browser, i), want(tc.phone, i))
				}
			}
		})
	}
}

// BenchmarkWAVTap is the recording's own cost: one 20 ms packet each way
// (a call's 50 pairs a second), written to a real file.
func BenchmarkWAVTap(b *testing.B) {
	w, err := NewWAVTap(filepath.Join(b.TempDir(), "r.wav"), 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	f := make([]byte, 160)
	b.ReportAllocs()
	for b.Loop() {
		w.FromBrowser(f)
		w.FromPhone(f)
	}
	b.StopTimer()
	w.Close()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*50/1e9*100, "cpu-%-per-call")
}
