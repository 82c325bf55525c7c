package render

import (
	"context"
	"testing"

	"hotdesk/prov/files"
)

// BenchmarkRender renders the files a boot storm asks for most (a locked
// phone's and a logged-in phone's device file, a user profile) from the
// golden fixtures; -benchmem shows the garbage each leaves for the GC.
func BenchmarkRender(b *testing.B) {
	s, err := New(Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	views := fixtureViews()
	for _, tc := range []struct {
		view string
		kind files.FileKind
	}{
		{"locked", files.KindDeviceConfig},
		{"native", files.KindDeviceConfig},
		{"native", files.KindUserConfig},
		{"keys", files.KindDeviceConfig},
		{"locked", files.KindMaster},
	} {
		v := views[tc.view]
		b.Run(tc.view+"_"+string(tc.kind), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Render(context.Background(), tc.kind, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
