package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"hotdesk/prov"
)

// failAfter reads n bytes of data, then fails.
type failAfter struct {
	data []byte
	n    int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk gone")
	}
	k := copy(p, f.data[:min(len(f.data), f.n, len(p))])
	f.data, f.n = f.data[k:], f.n-k
	return k, nil
}

func testMedia(t *testing.T, s prov.Store) {
	audio := make([]byte, 2*prov.MediaChunkBytes+1234)
	for i := range audio {
		audio[i] = byte(i * 7)
	}
	tests := []struct {
		kind, name string
		data       []byte
		chunks     int
	}{
		{"voicemail", "1001/a.wav", audio, 3},
		{"greeting", "42", audio[:prov.MediaChunkBytes], 1},
		{"recording", "empty.wav", nil, 0},
	}
	for i, tc := range tests {
		at := T0.Add(time.Duration(i) * time.Minute)
		m, err := s.PutMedia(ctx(t), tc.kind, tc.name, bytes.NewReader(tc.data), at)
		must(t, err)
		want := prov.MediaObject{Kind: tc.kind, Name: tc.name, Size: int64(len(tc.data)), Chunks: tc.chunks, Created: at}
		equal(t, "PutMedia", m, want)
		got, err := s.GetMedia(ctx(t), tc.kind, tc.name)
		must(t, err)
		equal(t, "GetMedia", got, want)
		var all []byte
		for seq := range got.Chunks {
			b, err := s.MediaChunk(ctx(t), tc.kind, tc.name, seq)
			must(t, err)
			if len(b) > prov.MediaChunkBytes {
				t.Fatalf("chunk %d: %d bytes", seq, len(b))
			}
			all = append(all, b...)
		}
		if !bytes.Equal(all, tc.data) {
			t.Fatalf("%s/%s: chunks differ from what was put", tc.kind, tc.name)
		}
		_, err = s.MediaChunk(ctx(t), tc.kind, tc.name, got.Chunks)
		wantErr(t, err, prov.ErrNotFound)
	}
	// Same name, another kind: separate.
	_, err := s.GetMedia(ctx(t), "recording", "1001/a.wav")
	wantErr(t, err, prov.ErrNotFound)

	// Replacing is whole: a failed write leaves the old object.
	_, err = s.PutMedia(ctx(t), "greeting", "42", &failAfter{data: audio, n: prov.MediaChunkBytes + 10}, T0.Add(time.Hour))
	if err == nil {
		t.Fatal("PutMedia of a failing reader succeeded")
	}
	got, err := s.GetMedia(ctx(t), "greeting", "42")
	must(t, err)
	equal(t, "after a failed replace", got, prov.MediaObject{Kind: "greeting", Name: "42", Size: prov.MediaChunkBytes,
		Chunks: 1, Created: T0.Add(time.Minute)})
	short := []byte("RIFF....WAVE")
	_, err = s.PutMedia(ctx(t), "greeting", "42", bytes.NewReader(short), T0.Add(time.Hour))
	must(t, err)
	b, err := s.MediaChunk(ctx(t), "greeting", "42", 0)
	must(t, err)
	equal(t, "replaced", b, short)
	_, err = s.MediaChunk(ctx(t), "greeting", "42", 1)
	wantErr(t, err, prov.ErrNotFound)

	list, err := s.ListMedia(ctx(t), "voicemail", T0.Add(time.Second), 10)
	must(t, err)
	equal(t, "ListMedia", len(list), 1)
	list, err = s.ListMedia(ctx(t), "voicemail", T0, 10)
	must(t, err)
	equal(t, "ListMedia before", len(list), 0)

	// Delete takes the chunks; deleting again is no error.
	must(t, s.DeleteMedia(ctx(t), "voicemail", "1001/a.wav"))
	must(t, s.DeleteMedia(ctx(t), "voicemail", "1001/a.wav"))
	_, err = s.GetMedia(ctx(t), "voicemail", "1001/a.wav")
	wantErr(t, err, prov.ErrNotFound)
	for seq := range 3 {
		_, err = s.MediaChunk(ctx(t), "voicemail", "1001/a.wav", seq)
		wantErr(t, err, prov.ErrNotFound)
	}
}
