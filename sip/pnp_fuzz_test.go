package sip

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// FuzzPnPSubscribe: whatever arrives on the plug-and-play group, parsing
// never panics, and an accepted SUBSCRIBE yields a 12-hex-digit MAC and
// device fields without line breaks.
func FuzzPnPSubscribe(f *testing.F) {
	for _, v := range []string{"yealink", "grandstream"} {
		raw, err := os.ReadFile("testdata/pnp/" + v + ".sip")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.NewReplacer("{{MAC}}", "001565aabbcc", "{{ADDR}}", "10.0.0.5:5060", "{{CALLID}}", "c1",
			"{{CSEQ}}", "1").Replace(string(raw)))
	}
	f.Add("SUBSCRIBE sip:x SIP/2.0\r\nEvent: ua-profile;;;=;profile-type=\"\r\n\r\n")
	p, err := NewPnP(PnPDeps{Provisioner: &fakePnPProv{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, d, err := p.parse([]byte(s))
		if err != nil {
			return
		}
		if _, herr := hex.DecodeString(d.MAC); len(d.MAC) != 12 || herr != nil {
			t.Fatalf("MAC %q accepted", d.MAC)
		}
		for _, v := range []string{d.Vendor, d.Model, d.Version, d.UserAgent} {
			if strings.ContainsAny(v, "\r\n") || len(v) > 128 {
				t.Fatalf("field %q accepted", v)
			}
		}
	})
}
