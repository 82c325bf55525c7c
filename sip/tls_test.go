package sip

import (
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
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hotdesk.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"hotdesk.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestRegisterTLS(t *testing.T) {
	t.Parallel()
	cert, key := writeCert(t)
	e := startEnv(t, nil, func(c *Config, _ *Deps) {
		c.Listen = append(c.Listen, "tls://127.0.0.1:0")
		c.TLSCert, c.TLSKey = cert, key
	})
	p := newPhone(t, "TLS", e.tls)
	res, _ := p.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600})
	if res.StatusCode != 200 {
		t.Fatalf("register over TLS: %s", res.Short())
	}
	if ev := e.nextEvent(t, Registered); ev.Binding.Transport != "TLS" {
		t.Fatalf("transport %q", ev.Binding.Transport)
	}
}
