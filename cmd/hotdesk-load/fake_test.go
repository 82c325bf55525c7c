package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// fakeDaemon stands in for hotdeskd in this package's tests only: an
// httptest provisioning server, an admin API and a sipgo registrar that
// challenges, accepts REGISTER and sends check-sync NOTIFYs. It is
// deliberately simple; the real storm runs against the real daemon.
type fakeDaemon struct {
	t        *testing.T
	realm    string
	keepCred bool // bug mode: logout leaves the session credentials live
	keepLine bool // bug mode: logout leaves the user's line in the device files
	// bug mode of the first daemon: a logout's check-sync goes only to the
	// device account's binding, which a phone that logged in dropped.
	notifyDeviceOnly bool

	mu       sync.Mutex
	deployed map[string]bool        // mac → registered once
	userOn   map[string][2]string   // mac → session authuser, password
	creds    map[string]string      // live authuser → password
	bindings map[string]fakeBinding // authuser → where its phone listens
	sessions map[string]string      // id → mac
	vendorOf map[string]string      // mac → vendor, from the User-Agent of its fetches
	nSess    int

	prov, admin *httptest.Server
	sipAddr     string
	client      *sipgo.Client
	notifies    atomic.Int64
	notifyAuth  atomic.Int64 // NOTIFYs the phone challenged
	fallbacks   atomic.Int64
	challenges  atomic.Int64
}

// fakeBinding is a registered contact: its URI and where requests to it
// go (the Contact's port when its host is the source's, as hotdeskd does).
type fakeBinding struct {
	uri    sip.Uri
	target string
}

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{t: t, realm: "fake.lan", deployed: map[string]bool{}, userOn: map[string][2]string{},
		creds: map[string]string{}, bindings: map[string]fakeBinding{}, sessions: map[string]string{}, vendorOf: map[string]string{}}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("fake-hotdesk"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	f.client, err = sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(f.onRegister)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.sipAddr = pc.LocalAddr().String()
	go func() { _ = srv.ServeUDP(pc) }()
	f.prov = httptest.NewServer(http.HandlerFunc(f.serveProv))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/sessions", f.login)
	mux.HandleFunc("DELETE /api/v1/sessions/{id}", f.logout)
	f.admin = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.prov.Close()
		f.admin.Close()
		_ = srv.Close()
		_ = ua.Close()
	})
	return f
}

func (f *fakeDaemon) sipHostPort() (string, string) {
	h, p, _ := net.SplitHostPort(f.sipAddr)
	return h, p
}

// serveProv serves each vendor's names, told apart by the User-Agent.
// Polycom: <MAC>.cfg is the master for MACs ending in an even digit, 404
// otherwise (the phone falls back to 000000000000.cfg). Yealink:
// y000000000000.cfg and <mac>.cfg; Cisco MPP: 8851.xml at power-on, then
// its Profile_Rule, <mac>.xml. The device file requires the device's
// digest credentials once it registered.
func (f *fakeDaemon) serveProv(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	ua := r.UserAgent()
	switch {
	case strings.HasPrefix(ua, "Yealink SIP-T46U"):
		switch {
		case name == "y000000000000.cfg":
			fmt.Fprint(w, "#!version:1.0.0.1\n## common\nsip.notify_reboot_enable = 0\n")
		case len(name) == 16 && strings.HasSuffix(name, ".cfg"):
			f.serveDevice(w, r, "yealink", name[:12])
		default:
			http.NotFound(w, r)
		}
		return
	case strings.HasPrefix(ua, "Cisco/CP-8851"):
		switch {
		case name == "8851.xml" && strings.Contains(ua, "("):
			mac, _, _ := strings.Cut(ua[strings.Index(ua, "(")+1:], ")")
			f.serveDevice(w, r, "cisco", mac)
		case len(name) == 16 && strings.HasSuffix(name, ".xml"):
			f.serveDevice(w, r, "cisco", name[:12])
		default:
			http.NotFound(w, r)
		}
		return
	case !strings.HasPrefix(ua, "FileTransport PolycomVVX"):
		http.Error(w, "not a phone", http.StatusForbidden)
		return
	}
	switch {
	case name == "000000000000.cfg":
		f.fallbacks.Add(1)
		fmt.Fprint(w, `<?xml version="1.0"?><APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="[PHONE_MAC_ADDRESS]-dev.cfg"/>`)
	case len(name) == 16 && strings.HasSuffix(name, ".cfg"):
		mac := name[:12]
		if (mac[11]-'0')%2 == 1 {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `<APPLICATION CONFIG_FILES="%s-dev.cfg"/>`, mac)
	case strings.HasSuffix(name, "-dev.cfg"):
		f.serveDevice(w, r, "polycom", strings.TrimSuffix(name, "-dev.cfg"))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeDaemon) serveDevice(w http.ResponseWriter, r *http.Request, vendor, mac string) {
	f.mu.Lock()
	deployed, sess := f.deployed[mac], f.userOn[mac]
	f.vendorOf[mac] = vendor
	f.mu.Unlock()
	if deployed && !f.httpAuthOK(r, mac, "prov-"+mac) {
		f.challenges.Add(1)
		w.Header().Add("WWW-Authenticate", `Digest realm="prov", qop="auth", algorithm=MD5, nonce="`+token()+`"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	host, port := f.sipHostPort()
	user, auth, pass := "dev"+mac, "dev"+mac, "pw-"+mac
	if sess[0] != "" {
		user, auth, pass = "2"+mac[8:], sess[0], sess[1]
	}
	switch vendor {
	case "yealink":
		// The AOR host is the SIP server; REGISTER goes to the outbound proxy.
		fmt.Fprintf(w, "#!version:1.0.0.1\naccount.1.enable = 1\naccount.1.user_name = %s\naccount.1.auth_name = %s\n"+
			"account.1.password = %s\naccount.1.sip_server.1.address = %s\naccount.1.outbound_proxy_enable = 1\n"+
			"account.1.outbound_proxy.1.address = %s\naccount.1.outbound_proxy.1.port = %s\naccount.2.enable = 0\n"+
			"static.auto_provision.server.username = %s\nstatic.auto_provision.server.password = prov-%s\n",
			user, auth, pass, f.realm, host, port, mac, mac)
	case "cisco":
		fmt.Fprintf(w, `<flat-profile>
  <Profile_Rule ua="na">[--uid %s --pwd prov-%s]%s/$MA.xml</Profile_Rule>
  <Resync_From_SIP ua="na">Yes</Resync_From_SIP>
  <Line_Enable_1_ ua="na">Yes</Line_Enable_1_>
  <User_ID_1_ ua="na">%s</User_ID_1_>
  <Use_Auth_ID_1_ ua="na">Yes</Use_Auth_ID_1_>
  <Auth_ID_1_ ua="na">%s</Auth_ID_1_>
  <Password_1_ ua="na">%s</Password_1_>
  <Proxy_1_ ua="na">%s</Proxy_1_>
  <Use_Outbound_Proxy_1_ ua="na">Yes</Use_Outbound_Proxy_1_>
  <Outbound_Proxy_1_ ua="na">%s:%s</Outbound_Proxy_1_>
  <Line_Enable_2_ ua="na">No</Line_Enable_2_>
</flat-profile>`, mac, mac, f.prov.URL, user, auth, pass, f.realm, host, port)
	default:
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<polycomConfig>
  <device device.prov.user="%s" device.prov.password="prov-%s" device.set="1"/>
  <reg reg.1.address="%s@%s" reg.1.auth.userId="%s" reg.1.auth.password="%s"
       reg.1.server.1.address="%s" reg.1.server.1.port="%s" reg.1.label="Line &amp; 1"/>
</polycomConfig>`, mac, mac, user, f.realm, auth, pass, host, port)
	}
}

func (f *fakeDaemon) httpAuthOK(r *http.Request, user, pass string) bool {
	c, err := digest.ParseCredentials(r.Header.Get("Authorization"))
	if err != nil || c.Username != user {
		return false
	}
	return verify(c, r.Method, pass)
}

// verify recomputes the response the client should have sent.
func verify(c *digest.Credentials, method, pass string) bool {
	want, err := digest.Digest(&digest.Challenge{Realm: c.Realm, Nonce: c.Nonce, Algorithm: c.Algorithm,
		QOP: []string{c.QOP}, Opaque: c.Opaque}, digest.Options{Method: method, URI: c.URI,
		Username: c.Username, Password: pass, Cnonce: c.Cnonce, Count: c.Nc})
	return err == nil && want.Response == c.Response
}

func (f *fakeDaemon) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	h := req.GetHeader("Authorization")
	if h == nil {
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		n := token()
		for _, alg := range []string{"SHA-256", "MD5"} {
			res.AppendHeader(sip.NewHeader("WWW-Authenticate",
				`Digest realm="`+f.realm+`", qop="auth", algorithm=`+alg+`, nonce="`+n+`"`))
		}
		_ = tx.Respond(res)
		return
	}
	c, err := digest.ParseCredentials(h.Value())
	f.mu.Lock()
	pass, known := "", false
	if err == nil {
		pass, known = f.creds[c.Username]
		if !known && strings.HasPrefix(c.Username, "dev") {
			pass, known = "pw-"+c.Username[3:], true // device accounts always exist
		}
	}
	f.mu.Unlock()
	if err != nil || !known || c.Realm != f.realm || !verify(c, "REGISTER", pass) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	exp := 3600
	if e := req.GetHeader("Expires"); e != nil {
		exp, _ = strconv.Atoi(e.Value())
	}
	f.mu.Lock()
	if exp == 0 {
		delete(f.bindings, c.Username)
	} else if ct := req.Contact(); ct != nil {
		b := fakeBinding{uri: ct.Address, target: req.Source()}
		if host, _, err := net.SplitHostPort(req.Source()); err == nil && host == ct.Address.Host && ct.Address.Port > 0 {
			b.target = net.JoinHostPort(host, strconv.Itoa(ct.Address.Port))
		}
		f.bindings[c.Username] = b
	}
	if strings.HasPrefix(c.Username, "dev") {
		f.deployed[c.Username[3:]] = true
	}
	f.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if ct := req.Contact(); ct != nil {
		res.AppendHeader(sip.NewHeader("Contact", "<"+ct.Address.String()+">;expires="+strconv.Itoa(exp)))
	}
	_ = tx.Respond(res)
}

func (f *fakeDaemon) adminOK(w http.ResponseWriter, r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "secret" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	return true
}

func (f *fakeDaemon) login(w http.ResponseWriter, r *http.Request) {
	if !f.adminOK(w, r) {
		return
	}
	var in struct{ Device, User string }
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Device == "" || in.User == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.nSess++
	id := "sess-" + strconv.Itoa(f.nSess)
	auth, pass := "s-"+in.User+"-"+strconv.Itoa(f.nSess), token()
	f.creds[auth] = pass
	f.userOn[in.Device] = [2]string{auth, pass}
	f.sessions[id] = in.Device
	b, ok := f.bindings["dev"+in.Device]
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":%q,"door":"api"}`, id)
	ev := f.event(in.Device)
	if ok {
		go f.notify(b, "dev"+in.Device, "pw-"+in.Device, ev)
	}
}

func (f *fakeDaemon) logout(w http.ResponseWriter, r *http.Request) {
	if !f.adminOK(w, r) {
		return
	}
	f.mu.Lock()
	mac, ok := f.sessions[r.PathValue("id")]
	sess := f.userOn[mac]
	// The phone is reached where it is registered now: its session line's
	// binding, answering a challenge with the session's (just revoked)
	// credentials; the first daemon only looked at the device account.
	b, bound := f.bindings[sess[0]]
	auth, pass := sess[0], sess[1]
	if f.notifyDeviceOnly {
		b, bound = f.bindings["dev"+mac]
		auth, pass = "dev"+mac, "pw-"+mac
	}
	if ok {
		delete(f.sessions, r.PathValue("id"))
		if !f.keepLine {
			delete(f.userOn, mac)
		}
		delete(f.bindings, sess[0])
		if !f.keepCred {
			delete(f.creds, sess[0])
		}
	}
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	if bound {
		go f.notify(b, auth, pass, f.event(mac))
	}
}

// event is the NOTIFY event that re-syncs mac's vendor.
func (f *fakeDaemon) event(mac string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.vendorOf[mac] == "cisco" {
		return "resync"
	}
	return "check-sync"
}

// notify sends the re-sync event to a binding and answers the phone's
// digest challenge with the credentials that made the binding.
func (f *fakeDaemon) notify(b fakeBinding, auth, pass, event string) {
	req := sip.NewRequest(sip.NOTIFY, b.uri)
	req.SetDestination(b.target)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: b.uri.User, Host: f.realm}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Subscription-State", "terminated"))
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second) // Timer F: a starved machine retransmits
	defer cancel()
	res, err := f.client.Do(ctx, req)
	if err == nil && res.StatusCode == 401 {
		f.notifyAuth.Add(1)
		res, err = f.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: auth, Password: pass})
	}
	if err == nil && res.StatusCode == 200 {
		f.notifies.Add(1)
	}
}

func token() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
