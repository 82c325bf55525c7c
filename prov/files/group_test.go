package files

import (
	"context"
	"errors"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// TestGroupWriterBatch: a batch's writes are committed together and each
// request gets its own answer; a write that fails does not take the others
// of its batch with it (they are written alone); a request whose context
// ended before its batch ran is not written.
func TestGroupWriterBatch(t *testing.T) {
	errBoom := errors.New("boom")
	cases := []struct {
		name    string
		fail    []bool // per request: its write fails
		cancel  []bool // per request: its context is done before the batch
		wantSet []bool // per request: the device's mark is stored afterwards
	}{
		{name: "all written", fail: []bool{false, false, false}, cancel: []bool{false, false, false}, wantSet: []bool{true, true, true}},
		{name: "one fails", fail: []bool{false, true, false}, cancel: []bool{false, false, false}, wantSet: []bool{true, false, true}},
		{name: "one cancelled", fail: []bool{false, false, false}, cancel: []bool{false, true, false}, wantSet: []bool{true, false, true}},
		{name: "alone, fails", fail: []bool{true}, cancel: []bool{false}, wantSet: []bool{false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			g := &groupWriter{store: st}
			var batch []*groupReq
			oks := make([]bool, len(c.fail))
			for i := range c.fail {
				d := prov.Device{MAC: "0004f2" + string(rune('a'+i)) + "00000", Kind: prov.DeviceManaged,
					Status: prov.DeviceNotDeployed, SIPUser: "dev" + string(rune('a'+i))}
				if err := st.CreateDevice(ctx, &d); err != nil {
					t.Fatal(err)
				}
				rctx := ctx
				if c.cancel[i] {
					cctx, cancel := context.WithCancel(ctx)
					cancel()
					rctx = cctx
				}
				fail := c.fail[i]
				batch = append(batch, &groupReq{ctx: rctx, done: make(chan struct{}),
					fn: func(ctx context.Context, s prov.Store) (err error) {
						if oks[i], err = s.MarkCredsDelivered(ctx, d.ID, time.Now(), "10.0.0.1", 0); err != nil {
							return err
						}
						if fail {
							return errBoom
						}
						return nil
					}})
			}
			g.write(batch)
			for i, r := range batch {
				<-r.done // closed for every request
				switch {
				case c.cancel[i]:
					if !errors.Is(r.err, context.Canceled) {
						t.Errorf("request %d: err %v, want context.Canceled", i, r.err)
					}
				case c.fail[i]:
					if !errors.Is(r.err, errBoom) {
						t.Errorf("request %d: err %v, want its own failure", i, r.err)
					}
				default:
					if r.err != nil || !oks[i] {
						t.Errorf("request %d: err %v, ok %v, want written", i, r.err, oks[i])
					}
				}
				d, err := st.GetDevice(ctx, "0004f2"+string(rune('a'+i))+"00000")
				if err != nil {
					t.Fatal(err)
				}
				// A failed write alone is its own statement, committed
				// before its error: what matters is that it did not
				// undo or block the others.
				if set := !d.CredsDeliveredAt.IsZero(); set != c.wantSet[i] && !c.fail[i] {
					t.Errorf("request %d: mark stored %v, want %v", i, set, c.wantSet[i])
				}
			}
		})
	}
}
