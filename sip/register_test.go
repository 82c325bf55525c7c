package sip

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterLifecycle(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"UDP", "TCP"} {
		t.Run(transport, func(t *testing.T) {
			e := startEnv(t, newMemStore())
			target := e.udp
			if transport == "TCP" {
				target = e.tcp
			}
			p := newPhone(t, transport, target)
			alice := regOpts{user: "1001", pass: "alice-sip", to: "alice", expires: 600}

			res, _ := p.register(t, alice)
			if res.StatusCode != 200 {
				t.Fatalf("register: %s", res.Short())
			}
			if cs := res.GetHeaders("Contact"); len(cs) != 1 || !strings.Contains(cs[0].Value(), "expires=600") {
				t.Fatalf("200 contacts: %v", cs)
			}
			ev := e.nextEvent(t, Registered)
			if ev.Binding.AOR != "sip:1001@hotdesk.test" || ev.Binding.Owner != (Owner{OwnerUser, "alice"}) ||
				ev.Binding.Transport != transport || ev.Binding.UserAgent != "testphone/1.0" {
				t.Fatalf("event binding: %+v", ev.Binding)
			}
			// Both names of the user reach the binding.
			for _, aor := range []string{"sip:1001@hotdesk.test", "sip:alice@hotdesk.test", "1001"} {
				if bs := e.srv.Lookup(context.Background(), aor); len(bs) != 1 {
					t.Fatalf("Lookup(%s) = %d bindings", aor, len(bs))
				}
			}

			// Refresh: same Call-ID, higher CSeq.
			if res, _ = p.register(t, alice); res.StatusCode != 200 {
				t.Fatalf("refresh: %s", res.Short())
			}
			e.nextEvent(t, Refreshed)

			// A second contact with a q-value: the 200 lists both.
			two := alice
			two.contacts = []string{"<sip:1001@10.0.0.9:5060>;q=0.5"}
			if res, _ = p.register(t, two); res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 2 {
				t.Fatalf("second contact: %s %v", res.Short(), res.GetHeaders("Contact"))
			}
			if bs := e.srv.Lookup(context.Background(), "1001"); len(bs) != 2 || bs[0].Q != "" || bs[1].Q != "0.5" {
				t.Fatalf("lookup order by q: %+v", bs)
			}

			// Unregister that one contact.
			one := two
			one.expires = 0
			if res, _ = p.register(t, one); res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 1 {
				t.Fatalf("unregister one: %s %v", res.Short(), res.GetHeaders("Contact"))
			}
			if ev := e.nextEvent(t, Unregistered); ev.Binding.Contact != "sip:1001@10.0.0.9:5060" {
				t.Fatalf("unregistered %q", ev.Binding.Contact)
			}

			// "*" needs Expires: 0.
			star := alice
			star.contacts = []string{"*"}
			if res, _ = p.register(t, star); res.StatusCode != 400 {
				t.Fatalf("* with expires 600: %s", res.Short())
			}
			star.expires = 0
			if res, _ = p.register(t, star); res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 0 {
				t.Fatalf("*: %s", res.Short())
			}
			if n := e.srv.BindingCount(); n != 0 {
				t.Fatalf("%d bindings after *", n)
			}
			e.stop()
			if e.store.len() != 0 {
				t.Fatalf("store holds %d rows after *", e.store.len())
			}
		})
	}
}

func TestRegisterRefusals(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	p := newPhone(t, "UDP", e.udp)
	tests := []struct {
		name string
		o    regOpts
		code int
	}{
		{"wrong password", regOpts{user: "1001", pass: "nope", to: "1001", expires: 600}, 401},
		{"unknown user", regOpts{user: "9999", pass: "nope", to: "1001", expires: 600}, 401},
		{"other user's AOR", regOpts{user: "1002", pass: "bob-sip", to: "1001", expires: 600}, 403},
		{"unknown AOR", regOpts{user: "1001", pass: "alice-sip", to: "carol", expires: 600}, 403},
		{"foreign domain", regOpts{user: "1001", pass: "alice-sip", to: "1001", domain: "evil.test", expires: 600}, 404},
		{"interval too brief", regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 10}, 423},
		{"bad q", regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600,
			contacts: []string{"<sip:a@1.2.3.4>;q=7"}}, 400},
		{"device may register its user", regOpts{user: "dev-aa", pass: "devpw", to: "1002", expires: 600}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.callID = "refusal-" + strings.ReplaceAll(tc.name, " ", "-")
			res, _ := p.register(t, tc.o)
			if res.StatusCode != tc.code {
				t.Fatalf("got %s, want %d", res.Short(), tc.code)
			}
			if tc.code == 423 {
				if h := res.GetHeader("Min-Expires"); h == nil || h.Value() != "60" {
					t.Fatalf("Min-Expires: %v", h)
				}
			}
		})
	}
	// Unknown user and wrong password must look the same from outside.
	a, _ := p.register(t, regOpts{user: "1001", pass: "x", to: "1001", expires: 600, callID: "same1"})
	b, _ := p.register(t, regOpts{user: "nobody", pass: "x", to: "1001", expires: 600, callID: "same2"})
	if shape(a.String()) != shape(b.String()) {
		t.Fatalf("responses differ:\n%s\n%s", a, b)
	}
}

// shape reduces a response to its status line and header names.
func shape(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\r\n") {
		if i := strings.IndexByte(l, ':'); i > 0 && !strings.HasPrefix(l, "SIP/") {
			out = append(out, l[:i])
		} else {
			out = append(out, l)
		}
	}
	return strings.Join(out, "|")
}

func TestLockout(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil, func(c *Config, _ *Deps) { c.LockoutThreshold = 3 })
	p := newPhone(t, "UDP", e.udp)
	for i := range 3 {
		res, _ := p.register(t, regOpts{user: "ghost", pass: "x", to: "1001", expires: 600, callID: "lk" + string(rune('a'+i))})
		if res.StatusCode != 401 {
			t.Fatalf("attempt %d: %s", i, res.Short())
		}
	}
	// Source locked: even the right password is refused now.
	res, _ := p.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "lk-ok"})
	if res.StatusCode != 403 {
		t.Fatalf("locked source: %s", res.Short())
	}
	e.clock.add(2 * time.Minute) // past lockout_base (1m)
	res, _ = p.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "lk-ok2"})
	if res.StatusCode != 200 {
		t.Fatalf("after lockout: %s", res.Short())
	}
	if n := testutil.ToFloat64(e.srv.m.lockouts); n < 1 {
		t.Fatalf("lockouts metric %v", n)
	}
}

// TestLockoutCannotLockTheRealPhoneOut is the attack of a host on the LAN
// sending bad REGISTERs for a user: it locks itself out, not the user's
// phone; guesses spread over many hosts exhaust the account's budget, which
// then refuses new sources but not the one the account works from.
func TestLockoutCannotLockTheRealPhoneOut(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil, func(c *Config, _ *Deps) { c.LockoutThreshold = 3 })
	real := newPhoneAt(t, "UDP", e.udp, "127.0.0.1")
	if res, _ := real.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "r1"}); res.StatusCode != 200 {
		t.Fatalf("real phone: %s", res.Short())
	}
	guess := func(ip string, n int) *phone {
		p := newPhoneAt(t, "UDP", e.udp, ip)
		for i := range n {
			res, _ := p.register(t, regOpts{user: "1001", pass: "guess", to: "1001", expires: 600,
				callID: fmt.Sprintf("g%s-%d", ip, i)})
			if res.StatusCode != 401 && res.StatusCode != 403 {
				t.Fatalf("guess from %s: %s", ip, res.Short())
			}
		}
		return p
	}
	attacker := guess("127.0.0.2", 4)
	if res, _ := attacker.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "a-ok"}); res.StatusCode != 403 {
		t.Fatalf("the guessing host is not locked out: %s", res.Short())
	}
	if res, _ := real.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "r2"}); res.StatusCode != 200 {
		t.Fatalf("one host's guesses locked the real phone out: %s", res.Short())
	}
	// Spread over hosts, the guesses spend the account's budget (15).
	for i := 3; i <= 8; i++ {
		guess(fmt.Sprintf("127.0.0.%d", i), 2)
	}
	fresh := newPhoneAt(t, "UDP", e.udp, "127.0.0.20")
	if res, _ := fresh.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "f1"}); res.StatusCode != 403 {
		t.Fatalf("a new source during a distributed attack: %s, want 403", res.Short())
	}
	if res, _ := real.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "r3"}); res.StatusCode != 200 {
		t.Fatalf("the distributed attack locked the real phone out: %s", res.Short())
	}
}

// TestSpoofedSourceCannotLockThePhoneOut is a host that sends bad
// REGISTERs as if from the phone's address (UDP spoofing, here another
// socket on the phone's IP that never receives the challenges sent to it):
// its nonces were issued to another source or forged, so the failures are
// refused and counted apart, never toward the phone's lockout.
func TestSpoofedSourceCannotLockThePhoneOut(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil, func(c *Config, _ *Deps) { c.LockoutThreshold = 3 })
	real := newPhoneAt(t, "UDP", e.udp, "127.0.0.1")
	if res, _ := real.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "s1"}); res.StatusCode != 200 {
		t.Fatalf("real phone: %s", res.Short())
	}
	// The attacker gets a genuine nonce at its own address…
	attacker := newPhoneAt(t, "UDP", e.udp, "127.0.0.2")
	res := attacker.do(t, attacker.request(regOpts{to: "1001", expires: 600, callID: "sa", cseq: 1}, ""))
	chal := challengeOf(t, res, "MD5")
	forged := *chal
	forged.Nonce = strings.Repeat("A", len(chal.Nonce))
	// …and sends guesses "from" the phone's IP with it, and with forged ones.
	spoof := newPhoneAt(t, "UDP", e.udp, "127.0.0.1")
	for i, c := range []*digest.Challenge{chal, &forged, chal, &forged, chal, &forged, chal, &forged} {
		o := regOpts{to: "1001", expires: 600, callID: fmt.Sprintf("sp-%d", i), cseq: 1}
		res := spoof.do(t, spoof.request(o, authFor(t, c, "1001", "guess", spoof.target.String(), 1)))
		if res.StatusCode != 401 {
			t.Fatalf("spoofed guess %d: %s, want 401", i, res.Short())
		}
	}
	if n := testutil.ToFloat64(e.srv.m.authFailures); n != 0 {
		t.Fatalf("spoofed guesses counted as %v failures", n)
	}
	if n := testutil.ToFloat64(e.srv.m.foreignNonces); n != 8 {
		t.Fatalf("foreign nonce metric %v, want 8", n)
	}
	if res, _ := real.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "s2"}); res.StatusCode != 200 {
		t.Fatalf("spoofed guesses locked the real phone out: %s", res.Short())
	}
	// Guesses with nonces issued to the guessing source still count.
	for i := range 3 {
		res, _ := attacker.register(t, regOpts{user: "1001", pass: "guess", to: "1001", expires: 600, callID: fmt.Sprintf("ag-%d", i)})
		if res.StatusCode != 401 {
			t.Fatalf("guess %d: %s", i, res.Short())
		}
	}
	if res, _ := attacker.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "ag-ok"}); res.StatusCode != 403 {
		t.Fatalf("a guessing source with its own nonces is not locked out: %s", res.Short())
	}
}

func TestNonces(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil, func(c *Config, _ *Deps) { c.SHA256UserAgents = []string{"TestPhone"} })
	p := newPhone(t, "UDP", e.udp)
	o := regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "nonce-1", cseq: 1}
	res := p.do(t, p.request(o, ""))
	chal := challengeOf(t, res, "MD5")
	o.cseq = 2
	if res = p.do(t, p.request(o, authFor(t, chal, "1001", "alice-sip", p.target.String(), 1))); res.StatusCode != 200 {
		t.Fatalf("first use: %s", res.Short())
	}
	// Replay: the same nonce and nc on a new request.
	o.cseq = 3
	res = p.do(t, p.request(o, authFor(t, chal, "1001", "alice-sip", p.target.String(), 1)))
	if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("replayed nc: %s", res)
	}
	// A higher nc on the same nonce is fine (refresh without a new challenge).
	o.cseq = 4
	if res = p.do(t, p.request(o, authFor(t, chal, "1001", "alice-sip", p.target.String(), 2))); res.StatusCode != 200 {
		t.Fatalf("nc=2: %s", res.Short())
	}
	// Expired nonce: stale=true, and the fresh nonce works.
	e.clock.add(6 * time.Minute)
	o.cseq = 5
	res = p.do(t, p.request(o, authFor(t, chal, "1001", "alice-sip", p.target.String(), 3)))
	if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("stale nonce: %s", res)
	}
	o.cseq = 6
	chal = challengeOf(t, res, "SHA-256")
	if res = p.do(t, p.request(o, authFor(t, chal, "1001", "alice-sip", p.target.String(), 1))); res.StatusCode != 200 {
		t.Fatalf("SHA-256 after stale: %s", res.Short())
	}
	// CSeq out of order on the same Call-ID.
	o.cseq = 2
	if res = p.do(t, p.request(o, authFor(t, chal, "1001", "alice-sip", p.target.String(), 2))); res.StatusCode != 400 {
		t.Fatalf("old CSeq: %s", res.Short())
	}
	// A revoked credential fails at once.
	e.creds.revoke("1001")
	o.cseq = 7
	if res = p.do(t, p.request(o, authFor(t, chal, "1001", "alice-sip", p.target.String(), 3))); res.StatusCode != 401 {
		t.Fatalf("revoked: %s", res.Short())
	}
}

func TestInstanceReplacement(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	p := newPhone(t, "UDP", e.udp)
	inst := `;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000000000001>";reg-id=1`
	o := regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "inst-a",
		contacts: []string{"<sip:1001@10.0.0.1:5060>" + inst}}
	if res, _ := p.register(t, o); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	// The phone comes back from a new address with a new Call-ID.
	o.callID, o.contacts = "inst-b", []string{"<sip:1001@10.0.0.2:5062>" + inst}
	p.cseq = 0
	if res, _ := p.register(t, o); res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 1 {
		t.Fatalf("%s %v", res.Short(), res.GetHeaders("Contact"))
	}
	bs := e.srv.Lookup(context.Background(), "1001")
	if len(bs) != 1 || bs[0].Contact != "sip:1001@10.0.0.2:5062" || bs[0].Instance != "<urn:uuid:00000000-0000-1000-8000-000000000001>" {
		t.Fatalf("bindings %+v", bs)
	}
}

func TestExpiryAndPersistence(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	e := startEnv(t, store)
	p := newPhone(t, "UDP", e.udp)
	if res, _ := p.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600}); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	if res, _ := p.register(t, regOpts{user: "1002", pass: "bob-sip", to: "1002", expires: 60, callID: "bob"}); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	e.stop() // flushes the write-behind queue
	if store.len() != 2 {
		t.Fatalf("store has %d rows", store.len())
	}
	// A new server on the same store has the bindings back.
	e2 := startEnv(t, store)
	deadline := time.Now().Add(3 * time.Second)
	for e2.srv.BindingCount() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if bs := e2.srv.Lookup(context.Background(), "alice"); len(bs) != 1 || bs[0].Owner.ID != "alice" {
		t.Fatalf("after restart: %+v", bs)
	}
	// Bob's 60 s binding expires on time.
	e2.clock.t = e.clock.Now().Add(61 * time.Second)
	e2.srv.expireNow()
	if ev := e2.nextEvent(t, Expired); ev.Binding.AOR != "sip:1002@hotdesk.test" {
		t.Fatalf("expired %+v", ev.Binding)
	}
	if e2.srv.BindingCount() != 1 {
		t.Fatalf("%d bindings", e2.srv.BindingCount())
	}
}

func TestMetricsLint(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	p := newPhone(t, "UDP", e.udp)
	p.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600})
	probs, err := testutil.GatherAndLint(e.reg)
	if err != nil || len(probs) > 0 {
		t.Fatalf("lint: %v %v", err, probs)
	}
	if n := testutil.ToFloat64(e.srv.m.register.WithLabelValues("ok")); n != 1 {
		t.Fatalf("register ok = %v", n)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Listen = []string{"udp://0.0.0.0:5060", "sctp://x:1"} }, "listen[1]"},
		{func(c *Config) { c.Listen = []string{"tls://0.0.0.0:5061"} }, "tls_cert"},
		{func(c *Config) { c.Domain = "" }, "domain"},
		{func(c *Config) { c.MinExpires = 0 }, "min_expires"},
		{func(c *Config) { c.MaxExpires = 10 }, "max_expires"},
		{func(c *Config) { c.Algorithms = []string{"SHA-1"} }, "algorithms[0]"},
		{func(c *Config) { c.SHA256UserAgents = []string{" "} }, "sha256_user_agents[0]"},
		{func(c *Config) { c.NonceTTL = time.Second }, "nonce_ttl"},
		{func(c *Config) { c.TCPUnauthTimeout = 0 }, "tcp_unauth_timeout"},
		{func(c *Config) { c.TCPUnauthTimeout = 2 * time.Hour }, "tcp_unauth_timeout"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want error naming %s, got %v", tc.want, err)
		}
	}
}

// TestChallengeAlgorithmsPerClient: SHA-256 is offered only to the clients
// known to handle it, so baresip 1.0 (which fails on a challenge it does not
// know) gets MD5 alone; a client answering with any accepted algorithm
// still authenticates.
func TestChallengeAlgorithmsPerClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ua  string
		algs, sha []string
		want      []string
	}{
		{"unknown client: MD5 only", "baresip v1.0.0 (x86_64/linux)", nil, nil, []string{"MD5"}},
		{"listed client: both", "Yealink SIP-T46U 108.86.0.20", nil, []string{"yealink"}, []string{"MD5", "SHA-256"}},
		{"listed client, SHA-256 first", "Linphone/5.1.65", []string{"SHA-256", "MD5"}, []string{"LINPHONE"}, []string{"SHA-256", "MD5"}},
		{"unlisted client, SHA-256 first", "baresip", []string{"SHA-256", "MD5"}, []string{"linphone"}, []string{"MD5"}},
		{"SHA-256 alone is offered to all", "baresip", []string{"SHA-256"}, nil, []string{"SHA-256"}},
		{"no User-Agent", "", nil, []string{"x"}, []string{"MD5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, nil, func(c *Config, _ *Deps) {
				if tc.algs != nil {
					c.Algorithms = tc.algs
				}
				c.SHA256UserAgents = tc.sha
			})
			p := newPhone(t, "UDP", e.udp)
			o := regOpts{to: "1001", expires: 600, callID: fmt.Sprintf("alg-%d", len(tc.name)), cseq: 1, ua: tc.ua}
			if tc.ua == "" {
				o.ua = "-"
			}
			res := p.do(t, p.request(o, ""))
			var got []string
			for _, h := range res.GetHeaders("WWW-Authenticate") {
				got = append(got, digestParam(h.Value(), "algorithm"))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("challenge algorithms %v, want %v: %s", got, tc.want, res)
			}
			// Any configured algorithm is accepted, offered or not.
			chal := challengeOf(t, res, tc.want[0])
			for _, alg := range e.srv.algs {
				c := *chal
				c.Algorithm = alg
				o.cseq++
				if res := p.do(t, p.request(o, authFor(t, &c, "1001", "alice-sip", p.target.String(), int(o.cseq)))); res.StatusCode != 200 {
					t.Fatalf("%s credentials: %s", alg, res.Short())
				}
			}
		})
	}
}

// TestNonceCountHashedAsSent: the registrar checks the response over the
// nc as the phone sent it (one check with provisioning), so a phone that
// writes nc without its leading zeros registers, and the same count
// written otherwise than it was hashed is refused.
func TestNonceCountHashedAsSent(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	p := newPhone(t, "UDP", e.udp)
	o := regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600, callID: "nc-as-sent", cseq: 1}
	chal := challengeOf(t, p.do(t, p.request(o, "")), "MD5")
	answer := func(sent, hashed string) string {
		h := func(s string) string { b := md5.Sum([]byte(s)); return hex.EncodeToString(b[:]) }
		uri := p.target.String()
		resp := h(h("1001:"+chal.Realm+":alice-sip") + ":" + chal.Nonce + ":" + hashed + ":c0ffee:auth:" + h("REGISTER:"+uri))
		return fmt.Sprintf(`Digest username="1001", realm=%q, nonce=%q, uri=%q, response=%q, qop=auth, nc=%s, cnonce="c0ffee"`,
			chal.Realm, chal.Nonce, uri, resp, sent)
	}
	o.cseq = 2
	if res := p.do(t, p.request(o, answer("0001", "00000001"))); res.StatusCode != 401 {
		t.Fatalf("nc hashed otherwise than sent: %s", res.Short())
	}
	o.cseq = 3
	if res := p.do(t, p.request(o, answer("2", "2"))); res.StatusCode != 200 {
		t.Fatalf("nc=2 hashed as sent: %s", res.Short())
	}
}
