package provhttp

import (
	"strings"
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// FuzzEMFetchOf: an Extension Mobility path from the network either is not
// one, or is malformed (no file: 404), or names a user, a token and the
// phone's own <MAC>.xml and nothing else (no path escape).
func FuzzEMFetchOf(f *testing.F) {
	f.Add("em/alice/new/0004f2000001.xml")
	f.Add("em/alice/s1.abc/0004F2000001.xml")
	f.Add("em/alice/tok/../../etc/passwd")
	f.Add("em//tok/0004f2000001.xml")
	f.Add("0004f2000001.xml")
	f.Fuzz(func(t *testing.T, name string) {
		em, file, ok := emFetchOf(name)
		if !ok {
			if strings.HasPrefix(name, files.EMPath+"/") {
				t.Fatalf("%q not taken as an EM path", name)
			}
			return
		}
		if file == "" {
			return
		}
		if em.user == "" || em.token == "" || strings.Contains(file, "/") || strings.Contains(em.token, "/") {
			t.Fatalf("%q split as user %q token %q file %q", name, em.user, em.token, file)
		}
		if _, isMAC := prov.NormalizeMAC(strings.TrimSuffix(file, ".xml")); !isMAC || !strings.HasSuffix(file, ".xml") {
			t.Fatalf("%q serves %q, not the phone's own profile", name, file)
		}
	})
}
