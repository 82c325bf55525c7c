package sip

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestHandoffSignature: only a hand-off signed with the cluster secret,
// recently, for this very request is accepted.
func TestHandoffSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := Handoff{Node: "n1", Secret: []byte("test-cluster-secret-0123")}
	newReq := func(contact string) *sip.Request {
		var u sip.Uri
		if err := sip.ParseUri(contact, &u); err != nil {
			t.Fatal(err)
		}
		r := sip.NewRequest(sip.INVITE, u)
		cid := sip.CallIDHeader("c1@x")
		r.AppendHeader(&cid)
		r.AppendHeader(&sip.CSeqHeader{SeqNo: 7, MethodName: sip.INVITE})
		return r
	}
	signed := key.header("sip:1002@test.lan", newReq("sip:1002@10.0.0.5:5060;transport=tcp"), now).Value()
	for _, tc := range []struct {
		name, header, contact string
		key                   Handoff
		at                    time.Time
		wantErr               string
	}{
		{"valid", signed, "sip:1002@10.0.0.5:5060;transport=tcp", key, now, ""},
		{"clock a little apart", signed, "sip:1002@10.0.0.5:5060;transport=tcp", key, now.Add(-20 * time.Second), ""},
		{"replayed later", signed, "sip:1002@10.0.0.5:5060;transport=tcp", key, now.Add(time.Minute), "from now"},
		{"other secret", signed, "sip:1002@10.0.0.5:5060;transport=tcp", Handoff{Secret: []byte("another-secret-of-16")}, now, "does not verify"},
		{"no secret here", signed, "sip:1002@10.0.0.5:5060;transport=tcp", Handoff{}, now, "no cluster.secret"},
		{"aimed at another contact", signed, "sip:1002@10.0.0.6:5060;transport=tcp", key, now, "does not verify"},
		{"another AOR", strings.Replace(signed, "1002", "1003", 1), "sip:1002@10.0.0.5:5060;transport=tcp", key, now, "does not verify"},
		{"malformed", "node=n1;aor=x;t=soon;sig=zz", "sip:1002@10.0.0.5:5060;transport=tcp", key, now, "malformed"},
		{"empty", "", "sip:1002@10.0.0.5:5060;transport=tcp", key, now, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node, aor, err := tc.key.verify(tc.header, newReq(tc.contact), tc.at)
			if tc.wantErr == "" {
				if err != nil || node != "n1" || aor != "sip:1002@test.lan" {
					t.Fatalf("verify = %q %q %v, want n1 sip:1002@test.lan", node, aor, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("verify error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
