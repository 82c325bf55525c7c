package sip

import (
	"context"
	"net"
	"testing"
)

// TestResponseDestination: a request's ResponseDestination is the
// destination NewResponseFromRequest gives its responses, before and after
// the server transaction's connection lookup resolved the Via (source host
// with the Via's port, or the source port for rport), without building one.
func TestResponseDestination(t *testing.T) {
	tl := NewTransportLayer(net.DefaultResolver, NewParser(), nil)
	defer tl.Close()
	// The listener's connection, as its reader files it under each source.
	tl.udp.pool.Add("127.0.0.1:40000", nopConn{})
	for _, tc := range []struct {
		name    string
		rport   bool
		resolve bool
		want    string
	}{
		{name: "received, not yet resolved", want: "127.0.0.1:40000"},
		{name: "Via port", resolve: true, want: "127.0.0.1:5070"},
		{name: "rport", rport: true, resolve: true, want: "127.0.0.1:40000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := invite() // Via 127.0.0.1:5070
			if tc.rport {
				v := req.Via()
				v.Params = v.Params.Add("rport", "")
			}
			req.SetSource("127.0.0.1:40000")
			if tc.resolve {
				if _, err := tl.serverRequestConnection(context.Background(), req); err != nil {
					t.Fatal(err)
				}
			}
			got := req.ResponseDestination()
			if res := NewResponseFromRequest(req, 100, "Trying", nil); got != tc.want || res.Destination() != got {
				t.Errorf("ResponseDestination %q, response's destination %q, want %q", got, res.Destination(), tc.want)
			}
		})
	}
}
