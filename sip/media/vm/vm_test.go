package vm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hotdesk/sip/media/vm"
	"hotdesk/sip/media/vm/vmtest"
)

type fakeMailbox struct {
	greeting string
	mu       sync.Mutex
	msgs     []vm.Message
	deposits chan vm.Deposit
	deleted  chan int64
	heard    chan int64
}

func (f *fakeMailbox) Greeting(context.Context, string) (string, error) { return f.greeting, nil }
func (f *fakeMailbox) Deposit(_ context.Context, d vm.Deposit) error {
	f.mu.Lock()
	f.msgs = append(f.msgs, vm.Message{ID: int64(len(f.msgs) + 1), Path: d.Path})
	f.mu.Unlock()
	f.deposits <- d
	return nil
}
func (f *fakeMailbox) Messages(context.Context, string) ([]vm.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs), nil
}
func (f *fakeMailbox) Heard(_ context.Context, _ string, id int64) error { f.heard <- id; return nil }
func (f *fakeMailbox) Delete(_ context.Context, _ string, id int64) error {
	f.deleted <- id
	return nil
}

// caller is a sipgo UA that places calls to the voicemail server.
type caller struct {
	dc   *sipgo.DialogClientCache
	byes chan struct{}
}

func newCaller(t *testing.T) *caller {
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := sipgo.NewServer(ua)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr)
	cli, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(addr.String()))
	if err != nil {
		t.Fatal(err)
	}
	c := &caller{byes: make(chan struct{}, 4), dc: sipgo.NewDialogClientCache(cli,
		sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: addr.Port}})}
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if c.dc.ReadBye(req, tx) == nil {
			c.byes <- struct{}{}
		}
	})
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeUDP(pc) }()
	// The client sends from the served socket once it is in the UA's pool.
	for i := 0; ; i++ {
		if _, err := ua.TransportLayer().GetConnection("udp", addr.String()); err == nil {
			break
		}
		if i > 10000 {
			t.Fatal("socket never entered the UA's pool")
		}
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() { pc.Close(); <-done; ua.Close() })
	return c
}

func (c *caller) call(t *testing.T, ctx context.Context, to string, peer *vmtest.Peer) *sipgo.DialogClientSession {
	t.Helper()
	var uri sip.Uri
	if err := sip.ParseUri("sip:"+to, &uri); err != nil {
		t.Fatal(err)
	}
	d, err := c.dc.Invite(ctx, uri, peer.Offer(), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := peer.Answer(d.InviteResponse.Body()); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDepositAndListen leaves a message over real SIP and RTP and plays it
// back: the greeting arrives as sent, the recording holds exactly the
// caller's audio, playback returns it, and DTMF 7 deletes it.
func TestDepositAndListen(t *testing.T) {
	dir := t.TempDir()
	greeting := vmtest.Ramp(10*160, 1)
	gpath := filepath.Join(dir, "greeting.wav")
	if err := os.WriteFile(gpath, vm.EncodeWAV(greeting), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := &fakeMailbox{greeting: gpath, deposits: make(chan vm.Deposit, 1), deleted: make(chan int64, 1),
		heard: make(chan int64, 1)}
	reg := prometheus.NewRegistry()
	s, err := vm.New(vm.Config{Listen: "127.0.0.1:0", MediaAddr: netip.MustParseAddr("127.0.0.1"),
		Dir: filepath.Join(dir, "vm"), MaxMessage: 30 * time.Second},
		vm.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, Mailbox: mb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	c := newCaller(t)

	peer, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c.call(t, cctx, "deposit.1001@"+s.Addr(), peer)
	// The greeting (10 frames) and the 200 ms beep (10 frames).
	got := peer.Received(20, 10*time.Second)
	if len(got) < 20 {
		t.Fatalf("received %d greeting frames, want 20", len(got))
	}
	if want := vm.PCMUFrames(greeting); !slices.EqualFunc(got[:10], want, bytes.Equal) {
		t.Fatal("the greeting played is not the greeting file")
	}
	msg := vmtest.Ramp(50*160, 2)
	if err := peer.Send(vm.PCMUFrames(msg)); err != nil {
		t.Fatal(err)
	}
	// '#' ends the recording (and the call) without a BYE race.
	if err := peer.Digit('#'); err != nil {
		t.Fatal(err)
	}
	var dep vm.Deposit
	select {
	case dep = <-mb.deposits:
	case <-cctx.Done():
		t.Fatal("no message deposited")
	}
	select {
	case <-c.byes:
	case <-cctx.Done():
		t.Fatal("voicemail did not hang up after #")
	}
	if dep.User != "1001" || dep.Duration != time.Second {
		t.Fatalf("deposit %+v", dep)
	}
	rec, err := vm.ReadWAVFile(dep.Path)
	if err != nil {
		t.Fatal(err)
	}
	if want := vm.DecodePCMU(vm.PCMUFrames(msg)); !slices.Equal(rec, want) {
		t.Fatalf("recording of %d samples is not the %d sent", len(rec), len(want))
	}

	peer2, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer peer2.Close()
	c.call(t, cctx, "listen.1001@"+s.Addr(), peer2)
	got = peer2.Received(55, 10*time.Second) // 100 ms beep, then the message
	if len(got) < 55 {
		t.Fatalf("received %d frames of playback, want 55", len(got))
	}
	if !slices.EqualFunc(got[5:55], vm.PCMUFrames(msg), bytes.Equal) {
		t.Fatal("playback is not the recorded message")
	}
	// The phone sends its audio from the answer on (here a little of it,
	// unpaced); then another host sends '#' (keep, and on: the call would
	// end) to the voicemail's port: not the caller's, it is dropped, and
	// the caller's '7' deletes.
	if err := peer2.Send(vm.PCMUFrames(vmtest.Ramp(3*160, 3))); err != nil {
		t.Fatal(err)
	}
	stranger, err := vmtest.NewPeerAt(net.IPv4(127, 0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.Aim(peer2)
	if err := stranger.Digit('#'); err != nil {
		t.Fatal(err)
	}
	if err := peer2.Digit('7'); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-mb.deleted:
		if id != 1 {
			t.Fatalf("deleted %d", id)
		}
	case <-cctx.Done():
		t.Fatal("7 did not delete the message")
	}
	select {
	case <-c.byes:
	case <-cctx.Done():
		t.Fatal("voicemail did not hang up after the last message")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "hotdesk_voicemail_rtp_invalid_total" {
			dropped = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if dropped < 1 {
		t.Fatalf("the stranger's packets counted %v, want ≥ 1", dropped)
	}
	want := "# HELP hotdesk_voicemail_messages_total Recorded messages by result (stored, empty, refused).\n" +
		"# TYPE hotdesk_voicemail_messages_total counter\nhotdesk_voicemail_messages_total{result=\"stored\"} 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotdesk_voicemail_messages_total"); err != nil {
		t.Fatal(err)
	}
}

// containsRun reports whether got holds want as consecutive frames.
func containsRun(got, want [][]byte) bool {
	for i := 0; i+len(want) <= len(got); i++ {
		if slices.EqualFunc(got[i:i+len(want)], want, bytes.Equal) {
			return true
		}
	}
	return false
}

// TestParkAndPickUp parks a call on a slot and picks it up from another
// call over real SIP and RTP: audio flows both ways between the two
// peers, and when the one who picked up hangs up the parked one is hung up.
func TestParkAndPickUp(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := vm.New(vm.Config{Listen: "127.0.0.1:0", MediaAddr: netip.MustParseAddr("127.0.0.1"), Dir: t.TempDir()},
		vm.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, Mailbox: &fakeMailbox{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	parkedUA, pickerUA := newCaller(t), newCaller(t)
	p1, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	p2, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	parkedUA.call(t, cctx, "park.s1p1@"+s.Addr(), p1)
	if got := p1.Received(1, 10*time.Second); len(got) < 1 {
		t.Fatal("the parked call hears nothing")
	}
	d2 := pickerUA.call(t, cctx, "park.s1p1@"+s.Addr(), p2)
	// The first frames relayed may race the bridge: send until a run
	// arrives whole, a bounded number of times.
	one, two := vm.PCMUFrames(vmtest.Ramp(10*160, 4)), vm.PCMUFrames(vmtest.Ramp(10*160, 5))
	ok := false
	for range 50 {
		if err := p1.Send(one); err != nil {
			t.Fatal(err)
		}
		if containsRun(p2.Received(10, 200*time.Millisecond), one) {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatal("the parked caller's audio does not reach the one who picked up")
	}
	ok = false
	for range 50 {
		if err := p2.Send(two); err != nil {
			t.Fatal(err)
		}
		if got := p1.Received(1<<20, 200*time.Millisecond); containsRun(got, two) {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatal("audio of the one who picked up does not reach the parked caller")
	}
	if err := d2.Bye(cctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-parkedUA.byes:
	case <-cctx.Done():
		t.Fatal("the parked call was not hung up when the other hung up")
	}
}

// reinvite sends a re-INVITE with offer in d's call, returns the answer and
// ACKs it.
func reinvite(t *testing.T, ctx context.Context, d *sipgo.DialogClientSession, offer []byte) *sip.Response {
	t.Helper()
	req := sip.NewRequest(sip.INVITE, d.InviteResponse.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	res, err := d.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, d.InviteResponse.Contact().Address)
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: res.CSeq().SeqNo, MethodName: sip.ACK})
		if err := d.WriteRequest(ack); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// TestParkedCallHold: a parked phone's own hold (re-INVITE sendonly) is
// answered recvonly on the same RTP address, and its resume sendrecv,
// after which it hears the park tone again; an offer without the call's
// codec is refused 488 and the call goes on.
func TestParkedCallHold(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := vm.New(vm.Config{Listen: "127.0.0.1:0", MediaAddr: netip.MustParseAddr("127.0.0.1"), Dir: t.TempDir()},
		vm.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, Mailbox: &fakeMailbox{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	ua := newCaller(t)
	p, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d := ua.call(t, cctx, "park.s1p2@"+s.Addr(), p)
	if got := p.Received(1, 10*time.Second); len(got) < 1 {
		t.Fatal("the parked call hears nothing")
	}
	port := func(body []byte) string {
		for _, l := range strings.Split(string(body), "\r\n") {
			if strings.HasPrefix(l, "m=audio ") {
				return strings.Fields(l)[1]
			}
		}
		return ""
	}
	first := port(d.InviteResponse.Body())
	for _, c := range []struct{ offer, want string }{
		{"a=sendonly", "a=recvonly"},
		{"a=inactive", "a=inactive"},
		{"a=sendrecv", "a=sendrecv"},
	} {
		res := reinvite(t, cctx, d, append(p.Offer(), c.offer+"\r\n"...))
		body := string(res.Body())
		if res.StatusCode != 200 || !strings.Contains(body, c.want) || port(res.Body()) != first {
			t.Fatalf("re-INVITE %s = %d %q, want 200 %s on port %s", c.offer, res.StatusCode, body, c.want, first)
		}
	}
	p.Reset()
	if got := p.Received(1, 10*time.Second); len(got) < 1 {
		t.Fatal("the resumed call hears nothing")
	}
	noCodec := strings.Replace(string(p.Offer()), "RTP/AVP 0 101", "RTP/AVP 18 101", 1)
	if res := reinvite(t, cctx, d, []byte(noCodec)); res.StatusCode != 488 {
		t.Fatalf("re-INVITE without the call's codec = %d, want 488", res.StatusCode)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "hotdesk_voicemail_reinvites_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["ok"] != 3 || got["refused"] != 1 {
		t.Errorf("hotdesk_voicemail_reinvites_total = %v, want 3 ok, 1 refused", got)
	}
	if err := d.Bye(cctx); err != nil {
		t.Fatal(err)
	}
}

// fakeSlots is a cluster's shared park slots: held names the slots this
// node holds; taken are another node's.
type fakeSlots struct {
	mu    sync.Mutex
	held  map[string]bool
	taken map[string]bool
	// released gets each released slot.
	released chan string
}

func (f *fakeSlots) Claim(_ context.Context, slot string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.taken[slot] {
		return vm.ErrSlotTaken
	}
	f.held[slot] = true
	return nil
}

func (f *fakeSlots) Release(_ context.Context, slot string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, slot)
	f.released <- slot
	return nil
}

func (f *fakeSlots) isHeld(slot string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[slot]
}

// TestParkSlotsShared: on a cluster a park is claimed in the shared slots
// before it is answered; a slot another node holds is refused 486 (never
// answered, nothing parked); a pickup and a hang-up of the parked call
// release the slot.
func TestParkSlotsShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	slots := &fakeSlots{held: map[string]bool{}, taken: map[string]bool{"s1p2": true}, released: make(chan string, 8)}
	s, err := vm.New(vm.Config{Listen: "127.0.0.1:0", MediaAddr: netip.MustParseAddr("127.0.0.1"), Dir: t.TempDir()},
		vm.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, Mailbox: &fakeMailbox{}, Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()

	refused := newCaller(t)
	var uri sip.Uri
	if err := sip.ParseUri("sip:park.s1p2@"+s.Addr(), &uri); err != nil {
		t.Fatal(err)
	}
	d, err := refused.dc.Invite(cctx, uri, []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"),
		sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	var er *sipgo.ErrDialogResponse
	if err := d.WaitAnswer(cctx, sipgo.AnswerOptions{}); !errors.As(err, &er) || er.Res.StatusCode != 486 {
		t.Fatalf("park on a slot another node holds: %v, want 486", err)
	}

	for _, hangup := range []string{"picked up", "hung up"} {
		parkedUA := newCaller(t)
		p1, err := vmtest.NewPeer()
		if err != nil {
			t.Fatal(err)
		}
		defer p1.Close()
		d1 := parkedUA.call(t, cctx, "park.s1p1@"+s.Addr(), p1)
		if !slots.isHeld("s1p1") {
			t.Fatalf("%s: the parked call's slot is not claimed", hangup)
		}
		if hangup == "picked up" {
			p2, err := vmtest.NewPeer()
			if err != nil {
				t.Fatal(err)
			}
			defer p2.Close()
			d2 := newCaller(t).call(t, cctx, "park.s1p1@"+s.Addr(), p2)
			if got := <-slots.released; got != "s1p1" || slots.isHeld("s1p1") {
				t.Fatalf("released %s; the slot is still claimed after the pickup", got)
			}
			if err := d2.Bye(cctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-parkedUA.byes:
			case <-cctx.Done():
				t.Fatal("the parked call was not hung up")
			}
			continue
		}
		if err := d1.Bye(cctx); err != nil {
			t.Fatal(err)
		}
		select { // the release follows the BYE's answer
		case got := <-slots.released:
			if got != "s1p1" || slots.isHeld("s1p1") {
				t.Fatalf("released %s; the slot is still claimed after the parked call hung up", got)
			}
		case <-cctx.Done():
			t.Fatal("the slot is still claimed after the parked call hung up")
		}
	}
	want := `
# HELP hotdesk_voicemail_park_claims_total Park slot claims in the store shared by cluster nodes, by result (claimed; taken: another node's call is parked there, the call is refused 486; failed: store error, 503).
# TYPE hotdesk_voicemail_park_claims_total counter
hotdesk_voicemail_park_claims_total{result="claimed"} 2
hotdesk_voicemail_park_claims_total{result="taken"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotdesk_voicemail_park_claims_total"); err != nil {
		t.Fatal(err)
	}
}
