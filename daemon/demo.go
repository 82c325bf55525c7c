package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/auth"
)

// Demo site facts, shown in the banner and the README.
const (
	demoDomain    = "demo.hotdesk.lan"
	demoSiteName  = "demo"
	demoAdminUser = "admin"
	demoAdminPass = "admin-demo"
)

var demoUsers = []struct{ name, first, last, ext string }{
	{"alice", "Alice", "Archer", "1001"},
	{"bob", "Bob", "Baker", "1002"},
	{"carol", "Carol", "Carter", "1003"},
}

var demoDevices = []string{"0004f2000001", "0004f2000002"}

// DemoConfig moves every listener the file did not name to an unprivileged
// port on loopback, so anyone can run the demo, and keeps what it named.
func DemoConfig(c Config) Config {
	set := func(key string, dst *string, v string) {
		if !c.Explicit(key) {
			*dst = v
		}
	}
	set("provisioning.http_listen", &c.Provisioning.HTTPListen, "127.0.0.1:8080")
	set("provisioning.tftp_listen", &c.Provisioning.TFTPListen, "127.0.0.1:6969")
	set("admin.listen", &c.Admin.Listen, "127.0.0.1:8081")
	if !c.Explicit("sip.listen") {
		c.SIP.Listen = []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"}
	}
	set("sip.domain", &c.SIP.Domain, demoDomain)
	if !c.Explicit("data_dir") {
		c.DataDir = demoDataDir()
	}
	if !c.Explicit("dhcp.mode") {
		c.DHCP.Mode = "off"
	}
	if !c.Explicit("admin.initial_password") {
		c.Admin.InitialUser, c.Admin.InitialPassword = demoAdminUser, demoAdminPass
	}
	return c
}

// demoDataDir keeps demo data out of /var/lib, writable by any user.
func demoDataDir() string {
	if d, err := os.UserHomeDir(); err == nil && d != "" {
		return filepath.Join(d, ".local", "state", "hotdesk-demo")
	}
	return filepath.Join(os.TempDir(), "hotdesk-demo")
}

// InitialPasswordFile is where, in the data directory, the first start
// writes a generated admin password.
const InitialPasswordFile = "initial-admin-password"

// bootstrapAdmin creates the first admin account when there is none. With
// no configured password a random one is generated and written to
// <data_dir>/initial-admin-password (0600) — never to the log, which is
// often readable by more people and shipped elsewhere. The store keeps only
// its argon2id hash.
func bootstrapAdmin(ctx context.Context, st prov.Store, c AdminConfig, dataDir string, logger *slog.Logger) error {
	n, err := st.CountAdmins(ctx)
	if err != nil {
		return fmt.Errorf("admin bootstrap: %w", err)
	}
	if n > 0 {
		return nil
	}
	user, pw, generated := c.InitialUser, c.InitialPassword, false
	if user == "" {
		user = "admin"
	}
	pwFile := filepath.Join(dataDir, InitialPasswordFile)
	if pw == "" {
		pw, generated = auth.RandomSecret(9), true
		// Written before the account exists: an account whose password
		// went nowhere would lock the operator out.
		if err := writePrivate(pwFile, pw+"\n"); err != nil {
			return fmt.Errorf("admin bootstrap: %w", err)
		}
	}
	hash, err := auth.HashPassword(pw, auth.DefaultArgon2)
	if err != nil {
		return err
	}
	if err := st.CreateAdmin(ctx, &prov.Admin{Username: user, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
		return fmt.Errorf("admin bootstrap: %w", err)
	}
	if generated {
		logger.Warn("first start: created the admin account with a random password; read it from the file, change it, then delete the file",
			"user", user, "password_file", pwFile)
	} else {
		logger.Info("first start: created the admin account from the configuration", "user", user)
	}
	return nil
}

// writePrivate replaces path with body, readable by the daemon's user only.
func writePrivate(path, body string) error {
	_ = os.Remove(path) // an older file may have other permissions
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// seedDemo creates the demo site, users and devices unless they exist, so
// running --demo twice on one data directory adds nothing the second time.
func seedDemo(ctx context.Context, st prov.Store, cfg Config, logger *slog.Logger) error {
	site, err := st.SiteByName(ctx, demoSiteName)
	if errors.Is(err, prov.ErrNotFound) {
		site = prov.Site{
			Name: demoSiteName, Domain: cfg.SIP.Domain, TimeZone: "Europe/Berlin", Language: "en",
			Subnets: []string{"127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16"},
			Login: prov.LoginPolicy{Enabled: true, Required: true, AutomaticLogout: 60, Persistent: true,
				OnePerUser: "replace"},
			Authorized:   []prov.AuthorizedNumber{{Description: "Front desk", Number: "1000"}, {Description: "Security", Number: "1099"}},
			Emergency:    []string{"911"},
			FeatureCodes: prov.FeatureCodes{Login: "*77", Logout: "*78", DND: "*76", Forward: "*72"},
			UpdatedAt:    time.Now(),
		}
		err = st.CreateSite(ctx, &site)
	}
	if err != nil {
		return fmt.Errorf("site: %w", err)
	}
	dir := prov.NewDirectory(st, nil, time.Now)
	portal := prov.PortalAccess{Enabled: true, Profile: prov.AccessWrite, CallHandling: prov.AccessWrite,
		Directory: prov.AccessWrite, Buttons: prov.AccessWrite}
	for _, u := range demoUsers {
		if _, err := st.GetUser(ctx, u.name); err == nil {
			continue
		} else if !errors.Is(err, prov.ErrNotFound) {
			return err
		}
		_, err := dir.CreateUser(ctx, prov.UserInput{
			Username: u.name, FirstName: u.first, LastName: u.last, Email: u.name + "@" + demoDomain,
			Language: "en", SiteID: site.ID, Password: u.name + "-demo", SIPPassword: u.name + "-sip",
			Numbers: []string{u.ext}, Portal: &portal,
		})
		if err != nil {
			return fmt.Errorf("user %s: %w", u.name, err)
		}
	}
	for _, mac := range demoDevices {
		if _, err := st.GetDevice(ctx, mac); err == nil {
			continue
		} else if !errors.Is(err, prov.ErrNotFound) {
			return err
		}
		now := time.Now()
		d := prov.Device{
			MAC: mac, Vendor: "polycom", Model: "VVX400", SiteID: site.ID, Kind: prov.DeviceManaged,
			Status: prov.DeviceNotDeployed, DeploymentPIN: auth.RandomDigits(6), SecurityPIN: auth.RandomDigits(6),
			ProvUser: mac, ProvPassword: auth.RandomSecret(10),
			SIPUser: "dev" + mac, SIPPassword: auth.RandomSecret(10), CreatedAt: now, UpdatedAt: now,
		}
		if err := st.CreateDevice(ctx, &d); err != nil {
			return fmt.Errorf("device %s: %w", mac, err)
		}
	}
	logger.Info("demo site ready", "domain", cfg.SIP.Domain, "users", len(demoUsers), "devices", len(demoDevices))
	return nil
}

// printBanner tells a newcomer what to try next.
func printBanner(w io.Writer, cfg Config, a Addrs) {
	host := loopbackFor
	sip := ""
	if len(a.SIPUDP) > 0 {
		sip = host(a.SIPUDP[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nhotdesk demo is running (data in %s)\n\n", cfg.DataDir)
	fmt.Fprintf(&b, "  Portal and API   http://%s/   (admin / %s; users alice, bob, carol with password <name>-demo)\n", host(a.Admin), demoAdminPass)
	fmt.Fprintf(&b, "  Metrics, health  http://%s/metrics   http://%s/healthz\n", host(a.Admin), host(a.Admin))
	if a.HTTP != "" {
		fmt.Fprintf(&b, "  Provisioning     http://%s/   (DHCP option 66 value: %s)\n", host(a.HTTP), bootServer(cfg, a))
	}
	if a.TFTP != "" {
		fmt.Fprintf(&b, "  TFTP             tftp://%s/\n", host(a.TFTP))
	}
	if sip != "" {
		fmt.Fprintf(&b, "  SIP registrar    sip:%s   domain %s\n", sip, cfg.SIP.Domain)
		b.WriteString("  SIP accounts     1001 / alice-sip, 1002 / bob-sip, 1003 / carol-sip (softphones)\n")
	}
	b.WriteString("\nTry:\n")
	fmt.Fprintf(&b, "  curl -s http://%s/healthz\n", host(a.Admin))
	fmt.Fprintf(&b, "  curl -s -u admin:%s http://%s/api/v1/users\n", demoAdminPass, host(a.Admin))
	if a.HTTP != "" {
		fmt.Fprintf(&b, "  curl -s http://%s/0004f2000001.cfg\n", host(a.HTTP))
	}
	if sip != "" {
		fmt.Fprintf(&b, "  sipp -sn uac %s -m 1   # or register a softphone as 1001@%s\n", sip, cfg.SIP.Domain)
	}
	b.WriteString("\nStop with Ctrl-C.\n")
	_, _ = io.WriteString(w, b.String())
}

// bootServer is what DHCP option 66 announces: the configured base URL, or
// the HTTP listener's address, with a wildcard host replaced by the
// address of the DHCP interface (or the first non-loopback IPv4).
func bootServer(cfg Config, a Addrs) string {
	return provBaseURL(cfg, a, cfg.DHCP.Interface)
}

// provBaseURL is the provisioning URL announced to phones (DHCP option 66,
// SIP plug-and-play), ending in "/": provisioning.base_url, else the bound
// HTTP listener (HTTPS when there is none) with path_prefix; a wildcard
// host becomes iface's address. "" when nothing serves HTTP.
func provBaseURL(cfg Config, a Addrs, iface string) string {
	base := cfg.Provisioning.BaseURL
	if base == "" {
		scheme, addr := "http", a.HTTP
		if addr == "" {
			scheme, addr = "http", cfg.Provisioning.HTTPListen
		}
		if addr == "" {
			scheme, addr = "https", a.HTTPS
		}
		h, port, err := net.SplitHostPort(addr)
		if err != nil {
			return ""
		}
		if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
			h = lanAddress(iface)
		}
		if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
			base = scheme + "://" + hostForURL(h) + cfg.Provisioning.PathPrefix
		} else {
			base = scheme + "://" + net.JoinHostPort(h, port) + cfg.Provisioning.PathPrefix
		}
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base
}

func hostForURL(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// lanAddress returns the first IPv4 of iface (or of any up, non-loopback
// interface), falling back to loopback.
func lanAddress(iface string) string {
	var ifs []net.Interface
	if iface != "" {
		if i, err := net.InterfaceByName(iface); err == nil {
			ifs = []net.Interface{*i}
		}
	} else {
		ifs, _ = net.Interfaces()
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
