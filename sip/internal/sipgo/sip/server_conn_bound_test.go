//go:build go1.25

package sip

import (
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// TestServerRequestConnectionBoundsResolving: callers pass no deadline
// (a request over UDP finds its connection without one, and a timer per
// server transaction was garbage), so serverRequestConnection bounds a Via's
// resolution itself. synctest: the 10 s pass on the bubble's clock.
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
		// Go's resolver gives up by itself after its resolv.conf attempts
		// (2 × 5 s by default: 20 s for the A and AAAA lookups): the bound
		// ends it sooner.
		if took := time.Since(start); took > serverConnectionTimeout {
			t.Errorf("gave up after %v, want at most %v", took, serverConnectionTimeout)
		}
	})
}
