package files_test

import (
	"maps"
	"testing"

	"hotdesk/prov/files"
)

// FuzzSplitKVUpload: whatever a phone uploads as <mac>-local.cfg, the file
// stored parses back to exactly the parameters kept, and none of them is
// one a phone may not set (a secret, an address, its provisioning).
func FuzzSplitKVUpload(f *testing.F) {
	f.Add([]byte("#!version:1.0.0.1\nfeatures.dnd.enable = 1\naccount.1.password = x\n"))
	f.Add([]byte("lang.gui = English\r\nlinekey.3.label=Bob\n# comment\n\n"))
	f.Add([]byte("static.auto_provision.server.url = http://evil/\nremote_phonebook.data.1.url = x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		up, err := files.SplitKVUpload(data)
		if err != nil {
			return
		}
		back, err := files.ParseKVConfig(up.Data)
		if err != nil {
			t.Fatalf("stored file does not parse: %v\n%q", err, up.Data)
		}
		if !maps.Equal(back, up.Params) {
			t.Fatalf("stored file parses to %v, kept %v", back, up.Params)
		}
		for k := range back {
			if why := files.KVUploadRefusal(k); why != "" {
				t.Fatalf("stored %q (%s)", k, why)
			}
		}
	})
}
