package prov

import (
	"bytes"
	"testing"
)

// FuzzReadImport feeds arbitrary files to the CSV import parser: it must
// never panic, and every row it returns is either refused with a reason or
// carries a line number.
func FuzzReadImport(f *testing.F) {
	f.Add([]byte("first_name,last_name,email\nA,B,a@example.test\n"))
	f.Add([]byte("\xef\xbb\xbfemail,first_name,last_name,numbers\n\"a@x.test\",\"A \"\"x\"\"\",B,\"1 2;3\"\n"))
	f.Add([]byte("first_name,last_name,email\nA,\"B,a@example.test\n"))
	f.Add([]byte("first_name,last_name,email\nA,B\"x,c\n,,,,\n"))
	f.Add([]byte("Shoe,last_name,email\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := readImport(bytes.NewReader(data), 1000)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.row.Status == ImportRefused && it.row.Error == "" {
				t.Fatalf("refused without a reason: %+v", it.row)
			}
			if it.row.Line < 2 {
				t.Fatalf("row line %d", it.row.Line)
			}
		}
	})
}
