package sip

import (
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"
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

// TestServerRequestConnectionBoundsResolving: callers pass no deadline
// (a request over UDP found its connection without one, and a timer per
// server transaction was garbage), so serverRequestConnection bounds a Via's
// resolution itself.
func TestServerRequestConnectionBoundsResolving(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done() // a DNS server that never answers
			return nil, ctx.Err()
		}}
		tl := NewTransportLayer(stuck, NewParser(), nil)
		defer tl.Close()
		req := invite()
		v := req.Via()
		v.Host = "phone.invalid" // no source: the Via is resolved
		start := time.Now()
		if _, err := tl.serverRequestConnection(context.Background(), req); err == nil {
			t.Fatal("a Via nobody resolves gave a connection")
		}
		if took := time.Since(start); took != serverConnectionTimeout {
			t.Errorf("gave up after %v, want %v", took, serverConnectionTimeout)
		}
	})
}
