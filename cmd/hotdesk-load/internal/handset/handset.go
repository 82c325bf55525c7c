package handset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icholy/digest"

	"hotdesk/cmd/hotdesk-load/internal/polycfg"
	"hotdesk/cmd/hotdesk-load/internal/sipua"
)

// DefaultUserAgent is what a VVX 400 on UC Software 6.4 sends; {mac} is
// replaced by the handset's MAC (UC Software puts it in "SN:").
const DefaultUserAgent = "FileTransport PolycomVVX-VVX_400-UA/6.4.0.0000 (SN:{mac}) Type/Application"

// Config describes one handset.
type Config struct {
	MAC string // 12 lowercase hex digits
	// Vendor makes it that vendor's phone (nil: Polycom).
	Vendor *Vendor
	// LocalIP is the source address for HTTP and SIP ("" = any), so
	// thousands of handsets on loopback look like distinct phones.
	LocalIP string
	// ProvBase is the provisioning URL (http://host:port[/prefix]).
	ProvBase string
	// SIPServer overrides the registrar host:port found in the files.
	SIPServer string
	// Domain overrides the AOR domain found in the files.
	Domain string
	// UserAgent overrides the vendor's HTTP User-Agent ({mac} is replaced).
	UserAgent   string
	Algorithm   string
	HTTPTimeout time.Duration
	// Expires is what REGISTER asks for (0: 3600).
	Expires int
	// RebootOnCheckSync makes every re-provisioning NOTIFY a reboot, as
	// Yealink's default sip.notify_reboot_enable=1 does: un-REGISTER every
	// line, boot again, register every configured line with a new
	// Call-ID. Without it the vendor's own rule decides (a Polycom with
	// voIpProt.SIP.specialEvent.checkSync.alwaysReboot=0 reboots only on
	// "check-sync;reboot=true"; a plain one re-fetches and applies the
	// line diff).
	RebootOnCheckSync bool
	// SplitPorts sends REGISTERs from a UDP port other than the one in the
	// Contact, where the phone listens for NOTIFY and INVITE (some NAT and
	// port setups); requests sent to the REGISTER's source port are lost.
	SplitPorts bool
}

// Error is a failure with a short, bounded kind for the error table.
type Error struct {
	Kind string
	Err  error
}

func (e *Error) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Kind returns the error table label of err.
func Kind(err error) string {
	var he *Error
	if errors.As(err, &he) {
		return he.Kind
	}
	var se *sipua.StatusError
	if errors.As(err, &se) {
		return "sip_" + strconv.Itoa(se.Status)
	}
	switch {
	case errors.Is(err, sipua.ErrTimeout):
		return "sip_timeout"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "deadline"
	}
	return "other"
}

func kerr(kind string, err error) error { return &Error{Kind: kind, Err: err} }

// Handset is one simulated phone. After Start it lives on its own: it
// answers (and validates) check-sync NOTIFYs, re-fetches its files,
// applies the line diff and refreshes its registrations, and reports
// what it did on Events.
type Handset struct {
	cfg  Config
	base *http.Transport
	// client is used by one fetch at a time: before Start, then under op;
	// credU/credP are the digest credentials it carries.
	client       *http.Client
	credU, credP string
	ua           *sipua.UA
	// fetches counts HTTP requests made.
	fetches atomic.Int64

	// op serialises what changes the lines: a re-fetch and its line diff,
	// a refresh.
	op sync.Mutex
	// mu guards params and lines (held briefly: the UA's reader looks a
	// line's credentials up under it).
	mu     sync.Mutex
	params polycfg.Params
	lines  map[int]*line

	events  chan Event
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool

	unregisters, unregRefused, resyncs, reboots, refreshFails atomic.Int64
}

// New returns a handset; nothing is sent yet.
func New(cfg Config) *Handset {
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = 10 * time.Second
	}
	if cfg.Vendor == nil {
		cfg.Vendor = Polycom
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = cfg.Vendor.UserAgent
	}
	cfg.UserAgent = expandMAC(cfg.UserAgent, cfg.MAC)
	d := &net.Dialer{Timeout: cfg.HTTPTimeout}
	if cfg.LocalIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(cfg.LocalIP)}
	}
	// One connection, not kept between boot steps: a phone opens a few
	// connections per boot, and 10,000 idle ones would only cost fds.
	base := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Second,
		DisableCompression: true, ResponseHeaderTimeout: cfg.HTTPTimeout}
	if cfg.Expires <= 0 {
		cfg.Expires = 3600
	}
	return &Handset{cfg: cfg, base: base, client: &http.Client{Transport: base, Timeout: cfg.HTTPTimeout},
		lines: map[int]*line{}, events: make(chan Event, 32)}
}

// Vendor is the handset's vendor.
func (h *Handset) Vendor() *Vendor { return h.cfg.Vendor }

// MAC is the handset's MAC.
func (h *Handset) MAC() string { return h.cfg.MAC }

// Close stops the phone (no un-REGISTER: it is unplugged) and releases
// its sockets and connections.
func (h *Handset) Close() {
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
	if h.ua != nil {
		_ = h.ua.Close()
	}
	h.base.CloseIdleConnections()
}

// Fetches is the number of HTTP requests made so far.
func (h *Handset) Fetches() int { return int(h.fetches.Load()) }

// Params returns the merged parameters of the last fetched files.
func (h *Handset) Params() polycfg.Params {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.params
}

// Fetch GETs name under the provisioning base (or name itself, when it is
// a URL: a Cisco Profile_Rule).
func (h *Handset) Fetch(ctx context.Context, name string) ([]byte, int, error) {
	u := name
	if !strings.Contains(name, "://") {
		u = strings.TrimRight(h.cfg.ProvBase, "/") + "/" + strings.TrimLeft(name, "/")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, kerr("http_request", err)
	}
	req.Header.Set("User-Agent", h.cfg.UserAgent)
	h.fetches.Add(1)
	res, err := h.client.Do(req)
	if err != nil {
		return nil, 0, kerr("http_conn", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, polycfg.MaxFileBytes+1))
	if err != nil {
		return nil, res.StatusCode, kerr("http_read", err)
	}
	if res.StatusCode != http.StatusOK {
		return body, res.StatusCode, kerr("http_"+strconv.Itoa(res.StatusCode)+"_"+kindOfName(name), fmt.Errorf("GET %s: %s", name, res.Status))
	}
	return body, res.StatusCode, nil
}

// fetchAs is Fetch with the digest credentials user/password ("": the
// ones the handset has).
func (h *Handset) fetchAs(ctx context.Context, name, user, password string) ([]byte, int, error) {
	h.useCreds(user, password)
	return h.Fetch(ctx, name)
}

// useCreds makes later fetches answer digest challenges with user/password
// (kept when either is empty).
func (h *Handset) useCreds(user, password string) {
	if user == "" || password == "" || (user == h.credU && password == h.credP) {
		return
	}
	h.credU, h.credP = user, password
	h.client = &http.Client{Timeout: h.cfg.HTTPTimeout,
		Transport: &digest.Transport{Username: user, Password: password, Transport: h.base}}
}

// kindOfName keeps error labels bounded: the file kind, never the MAC.
func kindOfName(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	switch {
	case name == "y000000000000.cfg":
		return "common"
	case strings.HasSuffix(name, ".xml") && len(name) == 16:
		return "profile"
	case strings.HasSuffix(name, ".xml"):
		return "psn_profile"
	case name == "000000000000.cfg":
		return "default_master"
	case len(name) == 16 && strings.HasSuffix(name, ".cfg"):
		return "master"
	case strings.HasSuffix(name, ".cfg"):
		return "config"
	}
	return "file"
}

// Boot fetches the files a boot or re-sync fetches, the vendor's way
// (Polycom: the master file, <MAC>.cfg else 000000000000.cfg, and the
// files it lists), and merges their parameters. It then uses the
// provisioning credentials they carry for later fetches, as the phone does.
func (h *Handset) Boot(ctx context.Context) (polycfg.Params, error) {
	merged, err := h.cfg.Vendor.fetch(ctx, h, h.Params())
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.params = merged
	h.mu.Unlock()
	h.useCreds(h.cfg.Vendor.provCreds(merged))
	return merged, nil
}

// Account returns line n of the current parameters with the overrides
// applied, as a sipua account, and the registrar address.
func (h *Handset) Account(n int) (sipua.Account, string, error) {
	p := h.Params()
	if p == nil {
		return sipua.Account{}, "", kerr("no_account", errors.New("no configuration fetched"))
	}
	for _, a := range h.cfg.Vendor.accounts(p) {
		if a.Line == n {
			return h.account(a)
		}
	}
	return sipua.Account{}, "", kerr("no_account", fmt.Errorf("line %d is not configured", n))
}

// account applies the overrides to a line of the files.
func (h *Handset) account(a polycfg.Account) (sipua.Account, string, error) {
	if h.cfg.Domain != "" {
		a.Domain = h.cfg.Domain
	}
	server := h.cfg.SIPServer
	if server == "" {
		server = net.JoinHostPort(a.Server, strconv.Itoa(a.Port))
	}
	if a.Domain == "" || server == "" {
		return sipua.Account{}, "", kerr("no_account", errors.New("no SIP server in the configuration"))
	}
	return sipua.Account{User: a.User(), Domain: a.Domain, AuthUser: a.UserID, Password: a.Password}, server, nil
}

// UA returns the handset's SIP stack (nil before Start).
func (h *Handset) UA() *sipua.UA { return h.ua }

// newUA binds the handset's sockets; they stay open so check-sync NOTIFYs
// reach the phone, which validates them with its lines' credentials.
func (h *Handset) newUA(server, realm string) (*sipua.UA, error) {
	local := "0.0.0.0:0"
	if h.cfg.LocalIP != "" {
		local = net.JoinHostPort(h.cfg.LocalIP, "0")
	}
	sipUA := h.cfg.Vendor.SIPUserAgent
	if sipUA == "" {
		sipUA = sipUserAgent(h.cfg.UserAgent)
	}
	ua, err := sipua.New(sipua.Config{Local: local, Server: server, UserAgent: sipUA,
		Algorithm: h.cfg.Algorithm, SplitContact: h.cfg.SplitPorts,
		Validation: &sipua.Validation{Realm: realm, Creds: h.lineCreds}})
	if err != nil {
		return nil, kerr("sip_socket", err)
	}
	h.ua = ua
	return ua, nil
}

// sipUserAgent turns the FileTransport agent into the SIP one, as UC
// Software does ("PolycomVVX-VVX_400-UA/6.4.0.0000").
func sipUserAgent(ft string) string {
	s := strings.TrimPrefix(ft, "FileTransport ")
	if i := strings.Index(s, " Type/"); i >= 0 {
		s = s[:i]
	}
	return s
}
