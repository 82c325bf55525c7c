package mail

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hotdesk/prov/mail/mailpittest"
)

func testConfig(s *mailpittest.Server) Config {
	c := DefaultConfig()
	c.Host, c.Port, c.TLS = s.Host, s.Port, TLSNone
	c.From, c.BaseURL = "Hotdesk <hotdesk@example.test>", "http://portal.example.test"
	return c
}

// run starts o.Run and stops it when the test ends; results get every
// final result.
func run(t *testing.T, cfg Config, reg prometheus.Registerer) (*Outbox, chan string) {
	t.Helper()
	results := make(chan string, 16)
	o, err := New(cfg, Deps{Registerer: reg, Done: func(_ Message, r string) { results <- r }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = o.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return o, results
}

func TestWelcomeInEachLanguage(t *testing.T) {
	s := mailpittest.Start(t)
	reg := prometheus.NewRegistry()
	o, results := run(t, testConfig(s), reg)
	exp := time.Date(2026, 12, 24, 18, 30, 0, 0, time.UTC)
	for _, tc := range []struct{ lang, subject, text string }{
		{"en", "Welcome to your phone account", "Set your password with this link"},
		{"de-CH", "Willkommen bei Ihrem Telefonkonto", "24.12.2026 18:30"},
		{"fr", "Bienvenue sur votre compte téléphonique", "Définissez votre mot de passe"},
		{"es", "Bienvenido a su cuenta telefónica", "Establezca su contraseña"},
		{"it", "Welcome to your phone account", "24 December 2026"}, // no Italian templates: English
	} {
		to := "user-" + tc.lang + "@example.test"
		link := "http://portal.example.test/password?token=tok-" + tc.lang
		if !o.Enqueue(Message{Kind: KindWelcome, To: to, Language: tc.lang, Name: "Zoë Ünal", Username: "zoe",
			Link: link, Expires: exp}) {
			t.Fatal("Enqueue refused")
		}
		if r := <-results; r != ResultSent {
			t.Fatalf("%s: result %s", tc.lang, r)
		}
		m := s.Wait(t, to, 1)
		if m.Subject != tc.subject || !strings.Contains(m.Text, tc.text) || !strings.Contains(m.Text, link) ||
			!strings.Contains(m.Text, "Zoë Ünal") || !strings.Contains(m.HTML, `href="`+link+`"`) {
			t.Errorf("%s: subject %q text %q html %q", tc.lang, m.Subject, m.Text, m.HTML)
		}
		if m.From.Address != "hotdesk@example.test" {
			t.Errorf("from %q", m.From.Address)
		}
	}
	if n := testutil.ToFloat64(o.sent.WithLabelValues(KindWelcome, ResultSent)); n != 5 {
		t.Errorf("sent = %v", n)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (cert, key string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return cert, key
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// STARTTLS is required and verified against ca_file; credentials go
// only inside TLS.
func TestStartTLSWithAuth(t *testing.T) {
	cert, key := selfSigned(t)
	auth := filepath.Join(t.TempDir(), "auth")
	// mailpit's password file takes htpasswd lines; plain text is one form.
	must(t, os.WriteFile(auth, []byte("mailer:{PLAIN}s3cret\n"), 0o600))
	s := mailpittest.Start(t, "--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-require-starttls",
		"--smtp-auth-file", auth)
	cfg := testConfig(s)
	cfg.TLS, cfg.CAFile, cfg.Username, cfg.Password = TLSStartTLS, cert, "mailer", "s3cret"
	o, results := run(t, cfg, prometheus.NewRegistry())
	o.Enqueue(Message{Kind: KindReset, To: "a@example.test", Language: "de", Username: "a", Link: "http://x/p?token=1"})
	if r := <-results; r != ResultSent {
		t.Fatalf("result %s", r)
	}
	if m := s.Wait(t, "a@example.test", 1); m.Subject != "Neues Passwort festlegen" {
		t.Errorf("subject %q", m.Subject)
	}

	// The wrong password is refused by the server: failed, not sent.
	cfg.Password = "wrong"
	o2, results2 := run(t, cfg, prometheus.NewRegistry())
	o2.Enqueue(Message{Kind: KindReset, To: "b@example.test", Username: "b", Link: "http://x/p?token=2"})
	if r := <-results2; r != ResultFailed {
		t.Fatalf("wrong password: result %s", r)
	}
	// Without ca_file the self-signed certificate is not trusted.
	cfg.Password, cfg.CAFile = "s3cret", ""
	o3, results3 := run(t, cfg, prometheus.NewRegistry())
	o3.Enqueue(Message{Kind: KindReset, To: "c@example.test", Username: "c", Link: "http://x/p?token=3"})
	if r := <-results3; r != ResultFailed {
		t.Fatalf("untrusted certificate: result %s", r)
	}
	if n := len(s.To(t, "b@example.test")) + len(s.To(t, "c@example.test")); n != 0 {
		t.Errorf("%d messages arrived that should not have", n)
	}
}

// A server that is down: retried Retries times, then failed; the caller
// of Enqueue never waits.
func TestServerDownRetriesThenFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now: connection refused
	cfg := DefaultConfig()
	cfg.Host, cfg.Port, cfg.TLS, cfg.From, cfg.BaseURL = "127.0.0.1", port, TLSNone, "h@example.test", "http://p"
	cfg.Retries, cfg.RetryBackoff = 2, time.Millisecond
	o, results := run(t, cfg, prometheus.NewRegistry())
	o.Enqueue(Message{Kind: KindWelcome, To: "x@example.test", Username: "x", Link: "http://p/x"})
	if r := <-results; r != ResultFailed {
		t.Fatalf("result %s", r)
	}
	if n := testutil.ToFloat64(o.sent.WithLabelValues(KindWelcome, ResultRetry)); n != 2 {
		t.Errorf("retries = %v, want 2", n)
	}
	o.Enqueue(Message{Kind: KindWelcome, To: "not an address", Username: "x"})
	if r := <-results; r != ResultInvalid {
		t.Fatalf("bad address: result %s", r)
	}
}

// A full queue drops (and counts) instead of blocking.
func TestFullQueueDrops(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Host, cfg.From, cfg.BaseURL, cfg.QueueSize = "127.0.0.1", "h@example.test", "http://p", 1
	o, err := New(cfg, Deps{})
	must(t, err)
	m := Message{Kind: KindReset, To: "x@example.test"}
	if !o.Enqueue(m) || o.Enqueue(m) {
		t.Fatal("want the first queued and the second dropped")
	}
	if n := testutil.ToFloat64(o.sent.WithLabelValues(KindReset, ResultDropped)); n != 1 {
		t.Errorf("dropped = %v", n)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Host, ok.From, ok.BaseURL = "smtp.example.com", "Hotdesk <h@example.com>", "https://pbx.example.com"
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"off is fine", func(c *Config) { *c = DefaultConfig() }, ""},
		{"on", func(*Config) {}, ""},
		{"tls", func(c *Config) { c.TLS = "ssl" }, "tls:"},
		{"port", func(c *Config) { c.Port = 0 }, "port:"},
		{"from", func(c *Config) { c.From = "nobody" }, "from:"},
		{"base_url", func(c *Config) { c.BaseURL = "pbx.example.com" }, "base_url:"},
		{"credentials", func(c *Config) { c.Username = "u" }, "username:"},
		{"queue", func(c *Config) { c.QueueSize = 0 }, "queue_size:"},
		{"retries", func(c *Config) { c.Retries = 11 }, "retries:"},
		{"ttl", func(c *Config) { c.ResetLinkTTL = time.Second }, "welcome_link_ttl:"},
		{"ca_file", func(c *Config) { c.CAFile = "/nonexistent.pem" }, "ca_file:"},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// make test builds the mailpit the tests expect.
func TestMakefileMailpitVersion(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	must(t, err)
	if !strings.Contains(string(b), "MAILPIT_VERSION := "+mailpittest.Version+"\n") {
		t.Errorf("Makefile's MAILPIT_VERSION is not mailpittest.Version (%s)", mailpittest.Version)
	}
}
