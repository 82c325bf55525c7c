package prov

import (
	"slices"
	"strings"
	"testing"
)

// FuzzRecordingNumbers feeds arbitrary number lists to the setting's
// parser and validation: nothing panics, and a list that is accepted is a
// bounded set of phone numbers that reads back the same once stored.
func FuzzRecordingNumbers(f *testing.F) {
	for _, s := range []string{"1001,1002", " 1001 , ,+4930*1#", "10 01", "1001;1002", ",,,", strings.Repeat("1,", 250)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		u := User{FirstName: "A", LastName: "B", Email: "a@example.test", Kind: KindPerson,
			Portal: PortalAccess{RecordingsNumbers: list, RecordingsOthers: AccessRead}}
		nums := RecordingNumbers(u.Portal)
		if validateUser(u) != nil {
			return
		}
		if len(nums) > MaxRecordingNumbers {
			t.Fatalf("%d numbers accepted", len(nums))
		}
		for _, n := range nums {
			if n == "" || len(n) > 32 || strings.Trim(n, "0123456789+*#") != "" {
				t.Fatalf("number %q accepted", n)
			}
		}
		again := RecordingNumbers(PortalAccess{RecordingsNumbers: strings.Join(nums, ",")})
		if !slices.Equal(again, nums) {
			t.Fatalf("%q reads back as %q", nums, again)
		}
	})
}
