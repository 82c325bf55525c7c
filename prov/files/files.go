package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
	"hotdesk/prov/auth"
)

// Proto is the protocol a file request came over.
type Proto string

// Protocols of the file namespace.
const (
	ProtoHTTP  Proto = "http"
	ProtoHTTPS Proto = "https"
	ProtoTFTP  Proto = "tftp"
)

// Errors of the file namespace beyond the domain ones (ErrNotFound, ErrAuth, ErrInvalid).
var (
	// ErrBadName means the requested name was refused before any lookup:
	// traversal, absolute, NUL, control or non-ASCII characters.
	ErrBadName = errors.New("bad file name")
	// ErrTooLarge means an upload exceeds max_upload_bytes.
	ErrTooLarge = errors.New("upload too large")
	// ErrQuota means an upload would take its owner (a device or a user)
	// or all uploads together over their byte budget.
	ErrQuota = errors.New("upload quota exceeded")
)

// Config is what Files needs from the provisioning section.
type Config struct {
	// BaseURL is rendered as the provisioning server; "" derives it from
	// the local address the request arrived at and HTTPPort/HTTPSPort.
	BaseURL    string
	PathPrefix string
	HTTPPort   int
	// HTTPSPort, when not 0, makes derived URLs https.
	HTTPSPort int
	// StaticDir holds firmware and other static files; "" serves none.
	StaticDir string
	// Enroll is the policy for unknown devices: auto, approve or deny.
	Enroll string
	// EnrollPerSource is how many unknown devices one source address may
	// enroll per minute under the auto policy; beyond it they wait for an
	// admin's approval (0: 30; negative: no limit). Each phone has its own
	// address, so only a host inventing MACs meets it.
	EnrollPerSource int
	// TFTPSecrets serves passwords over TFTP too.
	TFTPSecrets bool
	// SecretsHTTPSOnly serves passwords only over HTTPS: over plain HTTP
	// the files go without them (the boot file points the phone at HTTPS).
	SecretsHTTPSOnly bool
	MaxUploadBytes   int64
	// UploadQuota bounds the bytes all kept versions of one device's (or
	// one user's) uploads take (0: 8 MiB); UploadTotal those of all owners
	// together (0: 512 MiB), so uploads cannot fill the disk.
	UploadQuota    int64
	UploadTotal    int64
	UploadVersions int
	// UploadNamespaces are the parameter prefixes a .cfg upload may set
	// (nil: DefaultUploadNamespaces); UploadParamRefusal still refuses
	// secrets, addresses, prov.* and device.* within them.
	UploadNamespaces []string
	// CacheTTL bounds how long a rendered file is reused when no event
	// says it changed (changes made by another node).
	CacheTTL time.Duration
	// SeenInterval is how often a device's last-seen time is written.
	SeenInterval time.Duration
}

// Deps are Files' collaborators; Leases, Cache and Desk may be nil.
type Deps struct {
	Store      prov.Store
	Events     *prov.Events
	Renderer   Renderer
	Leases     AddrResolver
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// Cache is the rendered-files cache prov.New subscribed among its
	// rules (prov.Deps.FileCache), so it drops a change before check-sync
	// tells the phone; nil makes one subscribed to Events here.
	Cache *Cache
	// Desk, when set, is told of every authorized read of an identified
	// device's file, before it is served (Fetched, on the request path),
	// and applies a login password the user changed on the handset
	// (prov.login.localPassword in <user>-phone.cfg).
	Desk Desk
}

// Desk is what the namespace tells the desk services; *prov.Services
// implements it.
type Desk interface {
	Fetched(ctx context.Context, d prov.Device, f prov.Fetch)
	HandsetPassword(ctx context.Context, username, password string) error
}

// Request is one read or write in the namespace, from HTTP(S) or TFTP.
type Request struct {
	Proto Proto
	// Path is relative to the path prefix, without a leading slash.
	Path      string
	Remote    netip.AddrPort
	Local     netip.AddrPort
	UserAgent string
	// DeviceMAC is the device the caller established: a device that
	// authenticated with its digest credentials (DeviceAuthenticated), or
	// the device a native login ran for.
	DeviceMAC           string
	DeviceAuthenticated bool
	// LoginUser is the user whose login digest the caller verified.
	LoginUser string
	// DefaultLogin: LoginUser verified with the site's default-login
	// password (the one every phone of the site carries), not their own.
	DefaultLogin bool
	// EMLogin: the Extension Mobility door verified LoginUser for the
	// device's own profile (a Cisco MPP fetch through its rule's
	// signed-in branch), and the session is theirs.
	EMLogin bool
	// EMToken is the token of an ended Extension Mobility session the
	// phone still presents (EMSessionOf checked it): its profile carries it
	// back, so the phone's later re-syncs with that login stay refused
	// until it signs out itself.
	EMToken string
	// vendorHint is the vendor whose file name the request asked for: it
	// names an enrolled device's vendor after its User-Agent and DHCP
	// option 60, before its MAC prefix.
	vendorHint string
}

func (r Request) withVendor(v string) Request {
	r.vendorHint = v
	return r
}

// Content is a file to send. Close it when done.
type Content struct {
	Name        string
	Kind        FileKind
	Body        io.ReadSeeker
	Size        int64
	ModTime     time.Time
	ETag        string
	ContentType string
	// HTTP is the header values of a cached rendered file (nil otherwise).
	HTTP   *HTTPHeader
	closer io.Closer
	// reader is Body for a cached rendered file: one allocation for both.
	// A Content is used through its pointer only, never copied.
	reader bytes.Reader
}

// HTTPHeader holds a cached rendered file's response header values, each
// built once with the cache entry, so a fetch assigns them without
// allocating. net/http only reads them: never append to or change them.
type HTTPHeader struct {
	ContentType, ETag, ContentLength []string
	// Body is the cached bytes themselves, for a front end that writes
	// them without copying (fasthttp's SetBodyRaw): read only, like the rest.
	Body []byte
}

// Close releases a static file; rendered content holds nothing.
func (c *Content) Close() error {
	if c.closer != nil {
		return c.closer.Close()
	}
	return nil
}

// Files is the provisioning namespace served identically over HTTP(S) and
// TFTP: rendered device and user files, stored uploads and static files.
type Files struct {
	cfg        Config
	store      prov.Store
	events     *prov.Events
	rend       Renderer
	leases     AddrResolver
	fetch      func(ctx context.Context, d prov.Device, kind FileKind, req Request, act *activeRead)
	lastServer atomic.Pointer[serverMemo]
	onPassword func(ctx context.Context, username, password string) error
	log        *slog.Logger
	now        func() time.Time
	root       *os.Root
	m          *filesMetrics

	cache *Cache
	seen  *seenWriter
	// enrolls group-commits new phones' device rows, marks the
	// credentials' hand-out marks: in a boot storm each was a commit of
	// its own on SQLite's one writer.
	enrolls, marks *groupWriter
	// enrollLimits bound enrolments per source address (nil: none).
	enrollLimits *auth.SourceLimits
}

// New returns the namespace. With Deps.Cache nil it is on its own: its
// cache subscribes to Events to drop rendered files whenever what a device
// would render changes.
func New(cfg Config, d Deps) (*Files, error) {
	if d.Store == nil || d.Renderer == nil {
		return nil, errors.New("new files: store and renderer are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	if cfg.Enroll == "" {
		cfg.Enroll = EnrollAuto
	}
	if cfg.EnrollPerSource == 0 {
		cfg.EnrollPerSource = 30
	}
	if cfg.UploadNamespaces == nil {
		cfg.UploadNamespaces = DefaultUploadNamespaces
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 1 << 20
	}
	if cfg.UploadQuota <= 0 {
		cfg.UploadQuota = 8 << 20
	}
	if cfg.UploadTotal <= 0 {
		cfg.UploadTotal = 512 << 20
	}
	if cfg.UploadVersions <= 0 {
		cfg.UploadVersions = 5
	}
	if cfg.SeenInterval <= 0 {
		cfg.SeenInterval = time.Minute
	}
	f := &Files{cfg: cfg, store: d.Store, events: d.Events, rend: d.Renderer, leases: d.Leases,
		log: d.Logger, now: d.Now, m: newFilesMetrics(d.Registerer)}
	if d.Desk != nil {
		f.fetch = func(ctx context.Context, dev prov.Device, kind FileKind, req Request, act *activeRead) {
			d.Desk.Fetched(ctx, dev, prov.Fetch{Boot: kind == KindMaster, DeviceAuthenticated: req.DeviceAuthenticated,
				EMSignedOut: kind == KindMaster && req.DeviceAuthenticated && req.EMToken == "" && prov.EMVendor(dev.Vendor),
				Remote:      req.Remote, Active: act.get})
		}
		f.onPassword = d.Desk.HandsetPassword
	}
	f.seen = newSeenWriter(d.Store, d.Logger, cfg.SeenInterval)
	f.enrolls = &groupWriter{store: d.Store}
	f.marks = &groupWriter{store: d.Store}
	if cfg.EnrollPerSource > 0 {
		f.enrollLimits = auth.PerMinute(cfg.EnrollPerSource)
	}
	f.cache = d.Cache
	if cfg.StaticDir != "" {
		r, err := os.OpenRoot(cfg.StaticDir)
		if err != nil {
			return nil, fmt.Errorf("new files: static_dir: %w", err)
		}
		f.root = r
	}
	if d.Events == nil {
		f.events = &prov.Events{}
	}
	if f.cache == nil {
		f.cache = NewCache(cfg.CacheTTL, d.Now)
		f.events.Subscribe(f.cache.OnEvent)
	}
	return f, nil
}

// Close writes the pending last-seen times and releases the static
// directory.
func (f *Files) Close() error {
	f.enrolls.wait()
	f.marks.wait()
	f.seen.close()
	if f.root != nil {
		return f.root.Close()
	}
	return nil
}

// Invalidate drops every rendered file (the lead's code calls it after a
// change it did not publish as an event, e.g. a site edit).
func (f *Files) Invalidate() { f.cache.invalidate() }

// DeviceNeedsAuth reports whether HTTP requests for d's files must carry
// d's digest credentials: from the moment they went out (the one
// unauthenticated delivery), or once it is deployed (it registered with the
// account those same files gave it).
func DeviceNeedsAuth(d prov.Device) bool {
	return d.ProvUser != "" && d.ProvPassword != "" && (d.Status == prov.DeviceDeployed || !d.CredsDeliveredAt.IsZero())
}

// Identify returns the device a request comes from without enrolling it:
// the established DeviceMAC, the User-Agent, or the lease of the source.
func (f *Files) Identify(ctx context.Context, req Request) (prov.Device, error) {
	mac := f.identityMAC(req, "")
	if mac == "" {
		return prov.Device{}, fmt.Errorf("identify: no MAC: %w", prov.ErrNotFound)
	}
	return f.device(ctx, mac, req, false)
}

// Read returns the file at req.Path. Errors: ErrBadName, ErrNotFound (also
// for a file of another device), ErrAuth (credentials required).
func (f *Files) Read(ctx context.Context, req Request) (*Content, error) {
	pn, err := parseName(req.Path)
	if err != nil {
		return nil, err
	}
	pn = f.resolveName(ctx, req, pn)
	c, err := f.read(ctx, req, pn)
	if err != nil && pn.kind == KindUserConfig && req.LoginUser == "" && req.Proto != ProtoTFTP && errors.Is(err, prov.ErrNotFound) &&
		!errors.Is(err, errNotSiteDir) {
		// <user>.cfg is the native login door: ask for the user's
		// credentials whether or not the user or a session exists.
		return nil, fmt.Errorf("read %s: %w", pn.name, prov.ErrAuth)
	}
	return c, err
}

func (f *Files) read(ctx context.Context, req Request, pn parsedName) (*Content, error) {
	switch pn.kind {
	case KindStatic:
		return f.readStatic(pn.name)
	case KindLog:
		return nil, fmt.Errorf("read %s: logs are write-only: %w", pn.name, prov.ErrNotFound)
	}
	if req.Proto == ProtoTFTP && pn.userData() {
		// TFTP authenticates nothing: a user's lines, directory and call
		// lists go over HTTP(S) only.
		return nil, fmt.Errorf("read %s: user files are not served over TFTP: %w", pn.name, prov.ErrNotFound)
	}
	// Noted before any store read, so that a render from data an event
	// changed meanwhile is not cached.
	gen := f.cache.generation()
	if req.DeviceMAC != "" && pn.mac != "" && pn.mac != req.DeviceMAC {
		return nil, fmt.Errorf("read %s: not this device's file: %w", pn.name, prov.ErrNotFound)
	}
	mac := f.identityMAC(req, pn.mac)
	if mac == "" {
		if pn.kind == KindMaster {
			// The vendor's generic common file, for a phone that said
			// nothing about itself yet.
			v := &prov.View{Server: f.server(req)}
			v.Device.Vendor = pn.vendor
			return f.rendered(ctx, pn, v, "generic|"+pn.name+"|"+pn.vendor+"|"+f.server(req).BaseURL, "", gen)
		}
		return f.staticFallback(pn, fmt.Errorf("read %s: device unknown: %w", pn.name, prov.ErrNotFound))
	}
	d, err := f.device(ctx, mac, req.withVendor(pn.vendor), pn.kind == KindMaster || pn.enroll)
	if err != nil {
		return f.staticFallback(pn, fmt.Errorf("read %s: %w", pn.name, err))
	}
	if err := f.checkDir(ctx, d, pn); err != nil {
		return f.staticFallback(pn, fmt.Errorf("read %s: %w", pn.path(), err))
	}
	if err := f.authorize(ctx, req, d, pn); err != nil {
		return nil, fmt.Errorf("read %s: %w", pn.name, err)
	}
	// The secure bootstrap: a device that did not authenticate gets its
	// locked profile, never a user's lines or files — with its credentials
	// the one time they are handed out, and none after that.
	locked := !(req.DeviceAuthenticated && req.DeviceMAC == d.MAC) && req.LoginUser == ""
	if locked && pn.user != "" {
		return nil, fmt.Errorf("read %s: device not authenticated: %w", pn.name, prov.ErrNotFound)
	}
	// The session read and the answer of a cached file, in one allocation.
	fs := &fetchState{act: activeRead{f: f, id: d.ID}}
	act := &fs.act
	if f.fetch != nil {
		kind := pn.kind
		if pn.boot {
			kind = KindMaster // a vendor's boot file is the boot signal
		}
		f.fetch(ctx, d, kind, req, act)
	}
	secrets := f.secretsOver(req.Proto)
	if locked && (!d.CredsDeliveredAt.IsZero() || d.Status == prov.DeviceDeployed) {
		secrets = false // handed out once; never again without them (TFTP, the boot grace)
	}
	if locked && secrets && pn.kind == KindDeviceConfig {
		if err := f.deliver(ctx, d, req, act); err != nil {
			return nil, fmt.Errorf("read %s: %w", pn.name, err)
		}
	}
	server := f.server(req)
	// The key is built in a buffer: a fetch the cache serves makes no string of it.
	var kb [256]byte
	kbuf := append(append(append(append(append(kb[:0], pn.kind...), '|'), pn.name...), '|'), d.MAC...)
	kbuf = strconv.AppendBool(append(kbuf, '|'), secrets)
	kbuf = strconv.AppendBool(append(kbuf, '|'), locked)
	kbuf = append(append(append(append(kbuf, '|'), server.BaseURL...), '|'), req.EMToken...)
	cacheable := pn.kind == KindMaster || pn.kind == KindDeviceConfig || pn.kind == KindUserConfig ||
		pn.kind == KindDirectory && pn.user != ""
	if cacheable {
		if e, ok := f.cache.getKey(d.MAC, kbuf); ok {
			f.m.hit.Inc()
			if err := checkUser(pn, req, e.user); err != nil {
				return f.staticFallback(pn, err)
			}
			return e.contentIn(&fs.content, pn), nil
		}
	}
	v, err := f.view(ctx, d, secrets, req, act)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", pn.name, err)
	}
	if locked || heldBack(d, v) {
		v = lockedView(v)
	}
	if tok := emTokenFor(d, v, req); tok != v.EMToken {
		c := *v
		c.EMToken = tok
		v = &c
	}
	if pn.vendor != "" && v.Device.Vendor != pn.vendor {
		// Rendered as the vendor whose name it asked for, whatever an
		// older record (or a MAC prefix) said.
		c := *v
		c.Device.Vendor = pn.vendor
		v = &c
	}
	sessUser := ""
	if v.User != nil {
		sessUser = v.User.Username
	}
	if err := checkUser(pn, req, sessUser); err != nil {
		return f.staticFallback(pn, err)
	}
	switch pn.kind {
	case KindOverride, KindCalls:
		return f.readUpload(ctx, pn, v)
	case KindDirectory:
		// Polycom reads back the directory it uploaded; other vendors'
		// directory files are the user's contacts, rendered.
		if pn.vendor == "" && pn.user == "" && !v.UserInDevice {
			return f.readUpload(ctx, pn, v)
		}
	}
	return f.rendered(ctx, pn, v, string(kbuf), sessUser, gen)
}

// emTokenFor is the Extension Mobility token d's profile carries: its
// native session's, else the ended one the phone still presents.
func emTokenFor(d prov.Device, v *prov.View, req Request) string {
	if !prov.EMVendor(d.Vendor) {
		return ""
	}
	if v.Session != nil && v.Session.Door == prov.DoorNative {
		return prov.EMToken(d, v.Session.ID)
	}
	return req.EMToken
}

// checkUser allows a user's file only to the device their session is on,
// and to nobody else logged in with the native door.
func checkUser(pn parsedName, req Request, sessUser string) error {
	if pn.user == "" {
		return nil
	}
	if sessUser != pn.user || (req.LoginUser != "" && req.LoginUser != pn.user) {
		return fmt.Errorf("read %s: no session of that user here: %w", pn.name, prov.ErrNotFound)
	}
	return nil
}

// authorize enforces the device's digest credentials over HTTP. TFTP cannot
// authenticate; it gets the locked profile without secrets instead.
func (f *Files) authorize(ctx context.Context, req Request, d prov.Device, pn parsedName) error {
	if req.Proto == ProtoTFTP || !DeviceNeedsAuth(d) {
		return nil
	}
	if req.DeviceAuthenticated && req.DeviceMAC == d.MAC {
		f.noteCredsAddr(ctx, d, req)
		return nil
	}
	if req.LoginUser != "" && req.DeviceMAC == d.MAC {
		if req.EMLogin && pn.kind == KindDeviceConfig && pn.user == "" {
			return nil // Extension Mobility: the user's session profile is the device's
		}
		if req.LoginUser == pn.user {
			return nil // the native login door authenticated the user for their own files
		}
		if pn.user != "" {
			return prov.ErrNotFound // another user's file: as if it did not exist
		}
	}
	if f.bootGrace(d, req, pn) {
		return nil
	}
	f.unauthenticated(ctx, d, req)
	return prov.ErrAuth
}

// rendered serves a rendered file from the cache or renders it.
func (f *Files) rendered(ctx context.Context, pn parsedName, v *prov.View, key, user string, gen uint64) (*Content, error) {
	if e, ok := f.cache.get(v.Device.MAC, key); ok {
		f.m.hit.Inc()
		return e.content(pn), nil
	}
	f.m.miss.Inc()
	start := time.Now()
	body, err := f.rend.Render(ctx, pn.kind, v)
	f.m.render.WithLabelValues(string(pn.kind)).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", pn.name, err)
	}
	if cap(body)-len(body) > 512 {
		body = bytes.Clone(body) // the cache keeps it: drop the buffer's slack
	}
	sum := sha256.Sum256(body)
	e := &cacheEntry{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`,
		mod: f.now().UTC().Truncate(time.Second), ctype: f.rend.ContentType(v, pn.kind), user: user}
	e.http = &HTTPHeader{ContentType: []string{e.ctype}, ETag: []string{e.etag},
		ContentLength: []string{strconv.Itoa(len(body))}, Body: body}
	f.cache.put(v.Device, key, e, gen)
	return e.content(pn), nil
}

// readUpload serves the newest stored version of an upload.
func (f *Files) readUpload(ctx context.Context, pn parsedName, v *prov.View) (*Content, error) {
	owner := prov.DeviceObject(v.Device.MAC).String()
	if pn.user != "" {
		owner = prov.UserObject(pn.user).String()
	} else if v.UserInDevice && v.User != nil && pn.suffix != "web.cfg" {
		owner = prov.UserObject(v.User.Username).String()
	}
	u, err := f.store.LatestUpload(ctx, owner, pn.suffix)
	if err != nil {
		return f.staticFallback(pn, fmt.Errorf("read %s: %w", pn.name, err))
	}
	ct := "application/xml"
	return &Content{Name: pn.name, Kind: pn.kind, Body: bytes.NewReader(u.Data), Size: int64(len(u.Data)),
		ModTime: u.CreatedAt, ETag: `"` + u.SHA256 + `"`, ContentType: ct}, nil
}

// staticFallback serves a static file of the same name when a dynamic name
// found nothing (an admin may place 000000000000-directory.xml), else err.
func (f *Files) staticFallback(pn parsedName, err error) (*Content, error) {
	if f.root == nil || !errors.Is(err, prov.ErrNotFound) {
		return nil, err
	}
	c, serr := f.readStatic(pn.path())
	if serr != nil {
		return nil, err
	}
	return c, nil
}

// readStatic opens a regular file under static_dir through os.Root, which
// refuses any path (or symlink) leading outside it.
func (f *Files) readStatic(name string) (*Content, error) {
	if f.root == nil {
		return nil, fmt.Errorf("read %s: no static directory: %w", name, prov.ErrNotFound)
	}
	// Only regular files: opening a FIFO blocks until a writer comes, a
	// device may block or have side effects. Stat first, then open with
	// O_NONBLOCK so a file swapped for a FIFO in between cannot block either
	// (it changes nothing for regular files); the Stat below re-checks.
	if st, err := f.root.Stat(name); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file: %w", name, prov.ErrNotFound)
	}
	fh, err := f.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, prov.ErrNotFound)
	}
	st, err := fh.Stat()
	if err != nil || !st.Mode().IsRegular() {
		fh.Close()
		return nil, fmt.Errorf("read %s: not a regular file: %w", name, prov.ErrNotFound)
	}
	return &Content{Name: name, Kind: KindStatic, Body: fh, Size: st.Size(), ModTime: st.ModTime(),
		ContentType: "application/octet-stream", closer: fh}, nil
}

// server returns how the phone should reach this server.
func (f *Files) server(req Request) prov.ServerInfo {
	if f.cfg.BaseURL != "" {
		host := f.cfg.BaseURL
		if i := indexAfterScheme(host); i >= 0 {
			host = host[i:]
		}
		for i := 0; i < len(host); i++ {
			if host[i] == '/' || host[i] == ':' {
				host = host[:i]
				break
			}
		}
		return prov.ServerInfo{BaseURL: trimSlash(f.cfg.BaseURL), Host: host}
	}
	// Phones reach one or two local addresses: the last answer is kept,
	// so a fetch formats no address and builds no URL.
	if m := f.lastServer.Load(); m != nil && m.local == req.Local.Addr() {
		return m.info
	}
	info := f.serverFor(req.Local)
	f.lastServer.Store(&serverMemo{local: req.Local.Addr(), info: info})
	return info
}

// serverMemo is the ServerInfo for one local address.
type serverMemo struct {
	local netip.Addr
	info  prov.ServerInfo
}

func (f *Files) serverFor(local netip.AddrPort) prov.ServerInfo {
	req := Request{Local: local}
	host := "127.0.0.1"
	if req.Local.IsValid() {
		host = req.Local.Addr().Unmap().String()
	}
	scheme, port := "http", f.cfg.HTTPPort
	if f.cfg.HTTPSPort != 0 {
		scheme, port = "https", f.cfg.HTTPSPort
	}
	hp := host
	if req.Local.Addr().Is6() && !req.Local.Addr().Is4In6() {
		hp = "[" + host + "]"
	}
	if port != 0 && !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
		hp = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return prov.ServerInfo{BaseURL: trimSlash(scheme + "://" + hp + f.cfg.PathPrefix), Host: host}
}

func indexAfterScheme(s string) int {
	for i := 0; i+2 < len(s); i++ {
		if s[i:i+3] == "://" {
			return i + 3
		}
	}
	return -1
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// Observe counts one answered request; provhttp and the TFTP adapter call it.
func (f *Files) Observe(p Proto, kind FileKind, status int, bytes int64) {
	if kind == "" {
		kind = KindOther
	}
	f.m.observe(p, kind, status, bytes)
}

// KindOf classifies a path for metrics without any lookup.
func KindOf(path string) FileKind {
	kind, _ := KindAndUserOf(path)
	return kind
}

// KindAndUserOf is KindOf and UserOfFile from one parse of the name (the
// phones' fast path needs both for every fetch).
func KindAndUserOf(path string) (FileKind, string) {
	pn, err := parseName(path)
	if err != nil {
		return KindOther, ""
	}
	return pn.kind, pn.user
}
