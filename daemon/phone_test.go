package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// deskPhone behaves as a Polycom VVX on UC Software does (admin guide,
// ../shared/research/vendors.md), not as the daemon would like it to:
//   - it boots from <MAC>.cfg, fetches the CONFIG_FILES it lists (with the
//     provisioning digest credentials once a file gave it them) and
//     registers the lines reg.N the merged files define, each with its own
//     Call-ID;
//   - a line that left its configuration, or whose credentials changed, is
//     dropped (REGISTER Expires: 0 with its old credentials, whatever the
//     answer); it is never refreshed again;
//   - it challenges every NOTIFY (requestValidation) and accepts only one
//     signed with the credentials of the line it is addressed to, then
//     re-fetches and applies the difference — or, with rebootOnSync
//     (Yealink's default), drops every line and boots again with new
//     Call-IDs;
//   - it sends from one UDP port and listens on the one in its Contact.
//
// Other vendors' phones are the same phone with another phoneVendor: its
// User-Agent, the files it asks for and how it reads them, the NOTIFY
// event it re-provisions on and whether that reboots it (phone_vendors_test.go).
type deskPhone struct {
	t        *testing.T
	vendor   *phoneVendor
	mac      string
	provBase string
	domain   string
	server   string // registrar host:port
	// rebootOnSync reboots on every check-sync instead of reloading.
	rebootOnSync bool

	cli     *sipgo.Client
	contact string // where it listens: the Contact's host:port

	mu       sync.Mutex
	provUser string
	provPass string
	native   *[2]string // user ID and password typed at the native login
	// lines are the registered lines; configured are those of the last
	// files fetched (a line taken down on the phone stays configured).
	lines      map[string]phoneLine
	configured map[string]phoneLine
	params     map[string]string
	cseq       uint32
	// resyncs counts re-provisionings done, inflight those under way;
	// problems are requests a real phone would refuse or never see.
	resyncs  int
	reboots  int
	inflight int
	problems []string
	// strays are NOTIFYs to a user the phone no longer has a line of.
	strays  int
	changed *sync.Cond
	// syncMu makes re-syncs one at a time, as a phone's provisioning
	// client does: a NOTIFY during one is applied after it.
	syncMu sync.Mutex
	wg     sync.WaitGroup
	done   chan struct{}
}

// phoneLine is one configured registration: reg.N.address and auth.
type phoneLine struct {
	user, authUser, password, callID string
}

const deskPhoneRealm = "vvx-phone"

func newDeskPhone(t *testing.T, addrs Addrs, mac string) *deskPhone {
	return newVendorPhone(t, addrs, mac, polycomPhone)
}

// newVendorPhone is a phone of vendor v.
func newVendorPhone(t *testing.T, addrs Addrs, mac string, v *phoneVendor) *deskPhone {
	t.Helper()
	p := &deskPhone{t: t, vendor: v, mac: mac, provBase: "http://" + addrs.HTTP, domain: "test.lan", server: addrs.SIPUDP[0],
		lines: map[string]phoneLine{}, done: make(chan struct{})}
	p.changed = sync.NewCond(&p.mu)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(v.sipUA))
	if err != nil {
		t.Fatal(err)
	}
	// The sending side: its socket is created by the first request, and a
	// request that reaches it is one the phone does not listen for.
	send, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	send.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) { p.problem("NOTIFY reached the sending port") })
	if p.cli, err = sipgo.NewClient(ua); err != nil {
		t.Fatal(err)
	}
	lua, err := sipgo.NewUA(sipgo.WithUserAgent(v.sipUA))
	if err != nil {
		t.Fatal(err)
	}
	listen, err := sipgo.NewServer(lua)
	if err != nil {
		t.Fatal(err)
	}
	listen.OnNotify(p.onNotify)
	listen.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.contact = pc.LocalAddr().String()
	go func() { _ = listen.ServeUDP(pc) }()
	t.Cleanup(func() {
		// Under mu, so no NOTIFY starts work after Wait has begun.
		p.mu.Lock()
		close(p.done)
		p.mu.Unlock()
		p.wg.Wait()
		pc.Close()
		lua.Close()
		ua.Close()
	})
	return p
}

func (p *deskPhone) problem(e string) {
	p.mu.Lock()
	p.problems = append(p.problems, e)
	p.mu.Unlock()
	p.changed.Broadcast()
}

// mark returns how many re-provisionings the phone has done, for waitResync.
func (p *deskPhone) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resyncs
}

// waitResync waits until the phone has re-provisioned after mark (it got
// a NOTIFY, answered the challenge, re-fetched and applied) and nothing is
// under way; it fails on a NOTIFY the phone refused or never saw.
func (p *deskPhone) waitResync(mark int) {
	p.t.Helper()
	timer := time.AfterFunc(settleTimeout, p.changed.Broadcast)
	defer timer.Stop()
	deadline := time.Now().Add(settleTimeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	for (p.resyncs <= mark || p.inflight > 0) && len(p.problems) == 0 && time.Now().Before(deadline) {
		p.changed.Wait()
	}
	switch {
	case len(p.problems) > 0:
		p.t.Fatalf("phone %s: %v", p.mac, p.problems)
	case p.resyncs <= mark || p.inflight > 0:
		p.t.Fatalf("phone %s: no re-provisioning within %v (done %d, under way %d, NOTIFYs to lines it no longer had %d)",
			p.mac, settleTimeout, p.resyncs-mark, p.inflight, p.strays)
	}
}

// fetch GETs a file as the phone does, with its provisioning credentials
// once it has them (or the native login's, for <user>.cfg). It runs on
// NOTIFY goroutines too, so it reports trouble as a problem, not Fatal.
func (p *deskPhone) fetch(name string, user, pass string) (int, string) {
	var c http.Client
	if user != "" {
		c.Transport = &digest.Transport{Username: user, Password: pass}
	}
	u := p.provBase + "/" + name
	if strings.HasPrefix(name, "http://") {
		u = name
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("User-Agent", p.vendor.httpUA(p.mac))
	res, err := c.Do(req)
	if err != nil {
		p.problem(fmt.Sprintf("GET %s: %v", name, err))
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

var (
	attrRe        = regexp.MustCompile(`([A-Za-z0-9_.]+)="([^"]*)"`)
	configFilesRe = regexp.MustCompile(`CONFIG_FILES="([^"]*)"`)
)

// params parses the attributes of a Polycom XML file.
func params(body string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(body, -1) {
		m[a[1]] = unescapeXML(a[2])
	}
	return m
}

func unescapeXML(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&apos;", "'").Replace(s)
}

// configure fetches the vendor's files (a Polycom: the master file and
// its CONFIG_FILES and, logged in natively, <user>.cfg) and returns the
// lines they define.
func (p *deskPhone) configure() map[string]phoneLine {
	p.mu.Lock()
	pu, pp := p.provUser, p.provPass
	p.mu.Unlock()
	merged, ok := p.vendor.configure(p, pu, pp)
	if !ok {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.lines // keeps what it has, as a phone whose server fails does
	}
	if u, pw := p.vendor.provCreds(merged); u != "" && pw != "" {
		p.mu.Lock()
		p.provUser, p.provPass = u, pw
		p.mu.Unlock()
	}
	lines := p.vendor.lines(merged)
	p.mu.Lock()
	p.configured, p.params = lines, merged
	p.mu.Unlock()
	p.changed.Broadcast() // for waitParam
	return lines
}

// polycomConfigure is a Polycom's fetch: <MAC>.cfg, its CONFIG_FILES (the
// first listed wins), then the native login's <user>.cfg over them.
func polycomConfigure(p *deskPhone, pu, pp string) (map[string]string, bool) {
	p.mu.Lock()
	native := p.native
	p.mu.Unlock()
	code, master := p.fetch(p.mac+".cfg", pu, pp)
	m := configFilesRe.FindStringSubmatch(master)
	if code != 200 || m == nil {
		p.problem(fmt.Sprintf("master file = %d:\n%s", code, master))
		return nil, false
	}
	merged := map[string]string{}
	for _, f := range strings.Split(m[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		code, body := p.fetch(f, pu, pp)
		if code != 200 {
			continue // a missing optional file (Polycom goes on)
		}
		for k, v := range params(body) {
			if _, ok := merged[k]; !ok { // the first file listed wins
				merged[k] = v
			}
		}
	}
	if native != nil {
		code, body := p.fetch(native[0]+".cfg", native[0], native[1])
		if code == 200 {
			for k, v := range params(body) {
				merged[k] = v // the user profile overrides the device's
			}
		} else {
			// The stored login no longer works: back to the device profile.
			p.mu.Lock()
			p.native = nil
			p.mu.Unlock()
		}
	}
	return merged, true
}

// polycomLines are the reg.N lines of a Polycom configuration.
func polycomLines(merged map[string]string) map[string]phoneLine {
	lines := map[string]phoneLine{}
	for n := 1; n <= 8; n++ {
		r := "reg." + strconv.Itoa(n) + "."
		addr := merged[r+"address"]
		if addr == "" {
			continue
		}
		user, _, _ := strings.Cut(addr, "@")
		lines[user] = phoneLine{user: user, authUser: merged[r+"auth.userId"], password: merged[r+"auth.password"]}
	}
	return lines
}

// boot is a power-on: fetch everything and register every line with a new Call-ID.
func (p *deskPhone) boot() {
	p.t.Helper()
	p.apply(p.configure(), true)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.problems) > 0 {
		p.t.Fatalf("phone %s: %v", p.mac, p.problems)
	}
}

// reload is a check-sync without reboot: fetch and apply the difference.
// reload re-fetches and applies the configuration, one provisioning task
// at a time as the firmware runs them (a NOTIFY's re-sync, the user's
// logout key and the login screen never overlap).
func (p *deskPhone) reload() {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.reloadLocked()
}

func (p *deskPhone) reloadLocked() { p.apply(p.configure(), false) }

// reboot drops every line first, as a soft reboot does.
func (p *deskPhone) reboot() {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.rebootLocked()
}

func (p *deskPhone) rebootLocked() {
	p.mu.Lock()
	p.reboots++
	p.mu.Unlock()
	p.dropAll()
	p.boot()
}

func (p *deskPhone) dropAll() {
	p.mu.Lock()
	old := p.lines
	p.lines = map[string]phoneLine{}
	p.mu.Unlock()
	for _, l := range old {
		p.register(l, 0)
	}
}

// apply drops the lines that left the configuration or changed, and
// registers the new ones (all of them with fresh Call-IDs after a boot).
func (p *deskPhone) apply(want map[string]phoneLine, fresh bool) {
	p.mu.Lock()
	cur := p.lines
	p.mu.Unlock()
	next := map[string]phoneLine{}
	for user, l := range cur {
		w, ok := want[user]
		if ok && w.authUser == l.authUser && w.password == l.password && !fresh {
			next[user] = l
			continue
		}
		p.register(l, 0)
	}
	for user, w := range want {
		if _, kept := next[user]; kept {
			continue
		}
		w.callID = newToken() + "@" + p.mac
		code := p.register(w, 600)
		for try := 1; code == 0 && try < 3; try++ {
			code = p.register(w, 600) // no answer (a loaded server): a phone tries again
		}
		if code == 200 {
			next[user] = w
		}
	}
	p.mu.Lock()
	p.lines = next
	p.mu.Unlock()
}

// register sends REGISTER for line (expires 0 drops it) and returns the
// final status.
func (p *deskPhone) register(l phoneLine, expires int) int {
	p.mu.Lock()
	p.cseq++
	cseq := p.cseq
	p.mu.Unlock()
	host, port, _ := net.SplitHostPort(p.server)
	ru := sip.Uri{Scheme: "sip", Host: host}
	ru.Port, _ = strconv.Atoi(port)
	req := sip.NewRequest(sip.REGISTER, ru)
	to := sip.Uri{Scheme: "sip", User: l.user, Host: p.domain}
	from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
	from.Params.Add("tag", newToken())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s>", l.user, p.contact)))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return 0
	}
	if res.StatusCode == 401 {
		p.mu.Lock()
		p.cseq++
		req.CSeq().SeqNo = p.cseq
		p.mu.Unlock()
		if res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: l.authUser, Password: l.password}); err != nil {
			return 0
		}
	}
	return res.StatusCode
}

// challengeNotify answers req 401 with a fresh challenge in the phones'
// realm, as a phone validating requests does.
func challengeNotify(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate",
		fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5`, deskPhoneRealm, newToken())))
	_ = tx.Respond(res)
}

// signedBy reports whether auth (a NOTIFY's Authorization) answers such a
// challenge with user and password.
func signedBy(auth sip.Header, user, password string) bool {
	cred, err := digest.ParseCredentials(auth.Value())
	if err != nil || cred.Username != user {
		return false
	}
	want, err := digest.Digest(&digest.Challenge{Realm: deskPhoneRealm, Nonce: cred.Nonce, QOP: []string{"auth"},
		Algorithm: "MD5"}, digest.Options{Method: "NOTIFY", URI: cred.URI, Username: user, Password: password,
		Cnonce: cred.Cnonce, Count: cred.Nc})
	return err == nil && want.Response == cred.Response
}

// onNotify challenges a NOTIFY and accepts it signed with the addressed
// line's credentials, then re-provisions in the background.
func (p *deskPhone) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	h := req.GetHeader("Authorization")
	if h == nil {
		challengeNotify(req, tx)
		return
	}
	p.mu.Lock()
	line, ok := p.lines[req.To().Address.User]
	if !ok {
		line, ok = p.configured[req.To().Address.User]
	}
	p.mu.Unlock()
	if !ok {
		// No line of that user any more: the phone applied a newer
		// configuration, without it, before this NOTIFY came (a logout's
		// check-sync overtaken by another's re-sync). It answers 404 and
		// has nothing to re-sync; a phone left unlocked still fails
		// waitResync and assertLocked.
		p.mu.Lock()
		p.strays++
		p.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 404, "Not Found", nil))
		return
	}
	if !signedBy(h, line.authUser, line.password) {
		p.problem("refused a NOTIFY to " + req.To().Address.User + " not signed with that line's credentials")
		_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	ev := ""
	if e := req.GetHeader("Event"); e != nil {
		ev = e.Value()
	}
	reboot, known := p.vendor.onEvent(ev, p.param)
	if !known {
		p.problem("NOTIFY with an event a " + p.vendor.name + " does not act on: " + ev)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 489, "Bad Event", nil))
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		return
	default:
	}
	p.inflight++
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		p.syncMu.Lock()
		defer p.syncMu.Unlock()
		if p.rebootOnSync || reboot {
			p.rebootLocked()
		} else {
			p.reloadLocked()
		}
		p.mu.Lock()
		p.inflight--
		p.resyncs++
		p.mu.Unlock()
		p.changed.Broadcast()
	}()
}

// nativeLogin is the phone's own login screen (prov.login.useProvAuth):
// it fetches <user>.cfg with what the person typed and loads that profile.
func (p *deskPhone) nativeLogin(user, pass string) int {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	code, _ := p.fetch(user+".cfg", user, pass)
	if code == 200 {
		p.mu.Lock()
		p.native = &[2]string{user, pass}
		p.mu.Unlock()
		p.reloadLocked()
	}
	return code
}

// logoutOnPhone is the person logging out on the handset: a Polycom with
// the native login forgets the user profile and goes back to the device
// profile (so it registers the device account again); other phones can
// only take the user's line down.
func (p *deskPhone) logoutOnPhone() {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	wasNative := p.native != nil
	p.native = nil
	p.mu.Unlock()
	if wasNative {
		p.reloadLocked()
		return
	}
	p.dropAll()
}

// dial sends an INVITE (a feature code) from the first registered line and
// returns the final status and reason.
func (p *deskPhone) dial(target string) (int, string) {
	p.t.Helper()
	p.mu.Lock()
	var l phoneLine
	for _, x := range p.lines {
		l = x
		break
	}
	p.cseq++
	cseq := p.cseq
	p.mu.Unlock()
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: target, Host: p.domain})
	req.SetDestination(p.server)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: l.user, Host: p.domain}, Params: sip.NewParams()}
	from.Params.Add("tag", newToken())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: p.domain}, Params: sip.NewParams()})
	cid := sip.CallIDHeader(newToken() + "@" + p.mac)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s>", l.user, p.contact)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		p.t.Fatalf("INVITE %s: %v", target, err)
	}
	if res.StatusCode == 407 || res.StatusCode == 401 {
		p.mu.Lock()
		p.cseq++
		req.CSeq().SeqNo = p.cseq
		p.mu.Unlock()
		if res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: l.authUser, Password: l.password}); err != nil {
			p.t.Fatalf("INVITE %s with auth: %v", target, err)
		}
	}
	return res.StatusCode, res.Reason
}

// param returns a parameter of the last configuration fetched.
func (p *deskPhone) param(k string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.params[k]
}

// settle waits, while the phone is still applying NOTIFYs (a change may
// send a second one), until it registers exactly want, and returns what
// it registers then.
func (p *deskPhone) settle(want []string) []string {
	var got []string
	eventually(func() bool {
		got = p.lineUsers()
		p.mu.Lock()
		busy := p.inflight > 0
		p.mu.Unlock()
		return !busy && slices.Equal(got, want)
	})
	return got
}

// lineUsers lists the AOR user parts the phone keeps registered.
func (p *deskPhone) lineUsers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for u := range p.lines {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
