package handset

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	devLine    = [3]string{"dev42", "dev42", "dev-pw"}
	sharedLine = [3]string{"300", "shared300", "shared-pw"}
	userLine   = [3]string{"201", "s-alice-1", "sess-pw"}
)

// A check-sync NOTIFY is first challenged (401, MD5, qop auth), then
// accepted only with the credentials of the line it is addressed to; an
// accepted one makes the phone re-fetch its files.
func TestNotifyChallengeThenAccept(t *testing.T) {
	p := newPeer(t)
	p.setLines(map[int][3]string{1: devLine, 2: sharedLine})
	h, _ := p.start(Config{})
	contact := h.UA().LocalAddr()
	before := p.fetches(p.mac + ".cfg")

	// Wrong password, then right credentials but of another line: 403,
	// and the phone does nothing.
	for _, c := range []struct{ user, pw string }{{devLine[1], "wrong"}, {sharedLine[1], sharedLine[2]}} {
		first, final := p.notify(contact, devLine[0], "check-sync", c.user, c.pw)
		if first.StatusCode != 401 || final.StatusCode != 403 {
			t.Fatalf("NOTIFY with %s/%s: %d then %d, want 401 then 403", c.user, c.pw, first.StatusCode, final.StatusCode)
		}
		if ev := wait(t, h, EvNotifyRefused); ev.User != devLine[0] {
			t.Errorf("refused event for line %q", ev.User)
		}
	}
	if got := p.fetches(p.mac + ".cfg"); got != before {
		t.Fatalf("a refused NOTIFY made the phone fetch (%d → %d)", before, got)
	}

	first, final := p.notify(contact, devLine[0], "check-sync", devLine[1], devLine[2])
	if first.StatusCode != 401 || final.StatusCode != 200 {
		t.Fatalf("NOTIFY: %d then %d, want 401 then 200", first.StatusCode, final.StatusCode)
	}
	chal := first.GetHeader("WWW-Authenticate").Value()
	for _, want := range []string{`Digest realm="peer.lan"`, `nonce="`, "algorithm=MD5", `qop="auth"`} {
		if !strings.Contains(chal, want) {
			t.Errorf("challenge %q lacks %q", chal, want)
		}
	}
	if ev := wait(t, h, EvNotify); ev.User != devLine[0] || ev.Name != "check-sync" {
		t.Errorf("notify event %+v", ev)
	}
	ev := wait(t, h, EvApplied)
	if ev.Err != nil || ev.Reboot || len(ev.Lines) != 2 {
		t.Fatalf("applied %+v", ev)
	}
	if got := p.fetches(p.mac + ".cfg"); got != before+1 {
		t.Errorf("master fetched %d times after check-sync, want 1", got-before)
	}
	if st := h.Stats().SIP; st.Challenged != 3 || st.Refused != 2 {
		t.Errorf("sip stats %+v, want 3 challenged and 2 refused", st)
	}
}

// On a re-fetch a line that left the configuration (or whose credentials
// changed) is un-REGISTERed with its old Call-ID and credentials (a 403 is
// fine), new lines are registered with fresh Call-IDs and unchanged ones
// refreshed with theirs; only configured lines are refreshed after.
func TestLineDiffOnRefetch(t *testing.T) {
	p := newPeer(t)
	p.setLines(map[int][3]string{1: devLine, 2: sharedLine})
	h, boot := p.start(Config{})
	byUser := map[string]reg{}
	for _, r := range accepted(p, 2) {
		byUser[r.user] = r
	}
	dev, shared := byUser[devLine[0]], byUser[sharedLine[0]]
	if dev.callID == "" || shared.callID == "" || dev.callID == shared.callID || len(boot.Lines) != 2 {
		t.Fatalf("boot registrations %+v, lines %+v", byUser, boot.Lines)
	}
	contact := h.UA().LocalAddr()

	// Login: line 1 becomes the user's line, line 2 unchanged.
	p.setLines(map[int][3]string{1: userLine, 2: sharedLine})
	if _, final := p.notify(contact, devLine[0], "check-sync", devLine[1], devLine[2]); final.StatusCode != 200 {
		t.Fatalf("login NOTIFY: %d", final.StatusCode)
	}
	ev := wait(t, h, EvApplied)
	if ev.Err != nil {
		t.Fatalf("login apply: %v", ev.Err)
	}
	seq := accepted(p, 3)
	if r := seq[0]; r.user != devLine[0] || r.authUser != devLine[1] || r.expires != 0 || r.callID != dev.callID {
		t.Errorf("first REGISTER after login %+v, want the device line's un-REGISTER with its Call-ID %s", r, dev.callID)
	}
	if r := seq[1]; r.user != userLine[0] || r.authUser != userLine[1] || r.expires == 0 || r.callID == dev.callID || r.callID == shared.callID {
		t.Errorf("second REGISTER %+v, want the user line with a fresh Call-ID", r)
	}
	user := seq[1]
	if r := seq[2]; r.user != sharedLine[0] || r.callID != shared.callID || r.expires == 0 {
		t.Errorf("third REGISTER %+v, want the unchanged line refreshed with Call-ID %s", r, shared.callID)
	}

	// Logout: the session's credentials are revoked first; the NOTIFY is
	// addressed to the user's line and answered with them.
	p.revoke(userLine[1])
	p.setLines(map[int][3]string{1: devLine, 2: sharedLine})
	if _, final := p.notify(contact, userLine[0], "check-sync", userLine[1], userLine[2]); final.StatusCode != 200 {
		t.Fatalf("logout NOTIFY: %d", final.StatusCode)
	}
	ev = wait(t, h, EvApplied)
	if ev.Err != nil {
		t.Fatalf("a refused un-REGISTER of a revoked line is not an error: %v", ev.Err)
	}
	if len(ev.Lines) != 2 || ev.Lines[0].Acct.AuthUser != devLine[1] || !ev.Lines[0].Registered {
		t.Fatalf("lines after logout %+v", ev.Lines)
	}
	var unreg, devAgain reg
	for _, r := range accepted(p, 3) {
		switch {
		case r.user == userLine[0]:
			unreg = r
		case r.user == devLine[0]:
			devAgain = r
		}
	}
	if unreg.expires != 0 || unreg.callID != user.callID || unreg.status != 403 {
		t.Errorf("user line un-REGISTER %+v, want Expires 0, Call-ID %s, refused", unreg, user.callID)
	}
	if devAgain.status != 200 || devAgain.callID == dev.callID || devAgain.callID == user.callID {
		t.Errorf("device line %+v, want registered with a new Call-ID", devAgain)
	}
	if st := h.Stats(); st.Unregisters != 2 || st.UnregRefused != 1 {
		t.Errorf("stats %+v", st)
	}

	// A refresh covers the configured lines only.
	p.drain()
	if err := h.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range accepted(p, 2) {
		if r.user == userLine[0] {
			t.Errorf("refresh of a line that left the configuration: %+v", r)
		}
	}
}

// Registrations are refreshed on their own before they expire, with the
// same Call-ID, and only while the line is configured.
func TestBackgroundRefresh(t *testing.T) {
	p := newPeer(t)
	p.grant = 1 // refreshed every 500 ms
	p.setLines(map[int][3]string{1: devLine, 2: sharedLine})
	h, boot := p.start(Config{})
	ids := map[string]string{}
	for _, l := range boot.Lines {
		ids[l.Acct.User] = l.CallID
	}
	p.drain()
	seen := map[string]bool{}
	for len(seen) < 2 {
		r := p.next()
		if r.status == 200 && r.callID != ids[r.user] {
			t.Fatalf("refresh of %s with Call-ID %s, want %s", r.user, r.callID, ids[r.user])
		}
		seen[r.user] = true
	}
	p.setLines(map[int][3]string{1: devLine})
	if ev := h.Resync(context.Background(), false); ev.Err != nil || len(ev.Lines) != 1 {
		t.Fatalf("resync %+v", ev)
	}
	p.drain()
	for range 2 {
		if r := p.next(); r.user != devLine[0] {
			t.Fatalf("REGISTER for %s after it left the configuration", r.user)
		}
	}
}

// A handset that reboots on check-sync (Yealink's default), or any
// handset told reboot=true, un-REGISTERs every line, boots from the
// master file again and registers every line with a new Call-ID; a plain
// check-sync on a Polycom keeps the Call-IDs.
func TestRebootOnCheckSync(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		event  string
		reboot bool
	}{
		{"yealink default", Config{RebootOnCheckSync: true}, "check-sync", true},
		{"polycom reboot=true", Config{}, "check-sync;reboot=true", true},
		{"polycom plain", Config{}, "check-sync", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t)
			p.setLines(map[int][3]string{1: devLine, 2: sharedLine})
			h, boot := p.start(tc.cfg)
			before := map[string]string{}
			for _, l := range boot.Lines {
				before[l.Acct.User] = l.CallID
			}
			masters := p.fetches(p.mac + ".cfg")
			p.drain()
			if _, final := p.notify(h.UA().LocalAddr(), devLine[0], tc.event, devLine[1], devLine[2]); final.StatusCode != 200 {
				t.Fatalf("NOTIFY: %d", final.StatusCode)
			}
			ev := wait(t, h, EvApplied)
			if ev.Err != nil || ev.Reboot != tc.reboot || len(ev.Lines) != 2 {
				t.Fatalf("applied %+v", ev)
			}
			if p.fetches(p.mac+".cfg") != masters+1 {
				t.Errorf("master file not fetched again")
			}
			unregs := 0
			for _, r := range accepted(p, map[bool]int{true: 4, false: 2}[tc.reboot]) {
				if r.expires == 0 {
					unregs++
					if r.callID != before[r.user] {
						t.Errorf("un-REGISTER of %s with Call-ID %s, want the old %s", r.user, r.callID, before[r.user])
					}
				}
			}
			if want := map[bool]int{true: 2, false: 0}[tc.reboot]; unregs != want {
				t.Errorf("%d un-REGISTERs, want %d", unregs, want)
			}
			for _, l := range ev.Lines {
				if fresh := l.CallID != before[l.Acct.User]; fresh != tc.reboot {
					t.Errorf("line %s Call-ID %s (before %s): new = %v, want %v", l.Acct.User, l.CallID, before[l.Acct.User], fresh, tc.reboot)
				}
			}
		})
	}
}

// With SplitPorts the REGISTERs leave from a port other than the
// Contact's; NOTIFYs are answered on the Contact port only.
func TestSplitPorts(t *testing.T) {
	p := newPeer(t)
	p.setLines(map[int][3]string{1: devLine})
	h, _ := p.start(Config{SplitPorts: true})
	r := accepted(p, 1)[0]
	_, srcPort, _ := net.SplitHostPort(r.source)
	if srcPort == "" || srcPort == strconv.Itoa(r.contact.Port) {
		t.Fatalf("REGISTER from %s with Contact %s: want different ports", r.source, r.contact.String())
	}
	if r.contact.Port != h.UA().LocalAddr().Port || strconv.Itoa(h.UA().SendAddr().Port) != srcPort {
		t.Fatalf("contact %v / source %s, UA listens on %v and sends from %v", r.contact, r.source, h.UA().LocalAddr(), h.UA().SendAddr())
	}
	if _, final := p.notify(h.UA().LocalAddr(), devLine[0], "check-sync", devLine[1], devLine[2]); final.StatusCode != 200 {
		t.Fatalf("NOTIFY to the Contact port: %d", final.StatusCode)
	}
	wait(t, h, EvApplied)

	// A NOTIFY sent to the REGISTER's source port gets no answer.
	c, err := net.DialUDP("udp", nil, h.UA().SendAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "NOTIFY sip:dev42@" + h.UA().SendAddr().String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() +
		";branch=z9hG4bKmis\r\nFrom: <sip:hotdesk@peer.lan>;tag=a\r\nTo: <sip:dev42@peer.lan>\r\nCall-ID: mis1\r\n" +
		"CSeq: 1 NOTIFY\r\nEvent: check-sync\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 2048)); err == nil {
		t.Fatalf("the sending port answered a request (%d bytes)", n)
	}
	if got := h.Stats().SIP.Misdirected; got != 1 {
		t.Errorf("misdirected = %d, want 1", got)
	}
}

// accepted returns the next n REGISTERs the peer answered 200 or 403 (it
// does not report the challenged first attempts).
func accepted(p *peer, n int) []reg {
	p.t.Helper()
	out := make([]reg, 0, n)
	for len(out) < n {
		out = append(out, p.next())
	}
	return out
}
