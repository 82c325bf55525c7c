package mail

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"
)

// TLS modes of the connection to the SMTP server.
const (
	TLSNone     = "none"     // plain text (a relay on the same host)
	TLSStartTLS = "starttls" // plain connect, then STARTTLS (port 587); required, never skipped
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
)

// Config is the daemon's `mail:` section. Mail is off while Host is empty.
type Config struct {
	// Host and Port are the SMTP server (relay or submission service).
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// TLS is none, starttls or tls.
	TLS string `yaml:"tls"`
	// CAFile, when set, holds PEM certificates trusted for the server's
	// certificate instead of the system's (an internal relay).
	CAFile string `yaml:"ca_file"`
	// Username and Password authenticate with AUTH PLAIN, only over TLS
	// (or to a server on this host).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// From is the sender, e.g. "Hotdesk <hotdesk@example.com>".
	From string `yaml:"from"`
	// BaseURL is the portal's public address, for the links in messages.
	BaseURL string `yaml:"base_url"`
	// QueueSize bounds the messages waiting to be sent; more are dropped.
	QueueSize int `yaml:"queue_size"`
	// Retries is how often a delivery is tried again after a temporary
	// failure, RetryBackoff the first wait (doubling each time).
	Retries      int           `yaml:"retries"`
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// Timeout bounds one delivery attempt, connect to QUIT.
	Timeout time.Duration `yaml:"timeout"`
	// WelcomeLinkTTL and ResetLinkTTL are how long a link in a welcome
	// and in a password reset message works.
	WelcomeLinkTTL time.Duration `yaml:"welcome_link_ttl"`
	ResetLinkTTL   time.Duration `yaml:"reset_link_ttl"`
	// ImportRate paces the welcome messages of a CSV import (messages per
	// second): they wait in a backlog and enter the queue at this rate, and
	// only when it has room, so a big import's mails are not dropped.
	ImportRate float64 `yaml:"import_rate"`
}

// DefaultConfig returns the defaults: mail off.
func DefaultConfig() Config {
	return Config{Port: 587, TLS: TLSStartTLS, QueueSize: 256, Retries: 3, RetryBackoff: 30 * time.Second,
		Timeout: 30 * time.Second, WelcomeLinkTTL: 7 * 24 * time.Hour, ResetLinkTTL: time.Hour, ImportRate: 5}
}

// Enabled reports whether mail is on.
func (c Config) Enabled() bool { return c.Host != "" }

// Validate names the offending key relative to the mail section. With
// mail off only the shape of the numbers is checked.
func (c Config) Validate() error {
	var errs []error
	add := func(key, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(msg, args...)))
	}
	if c.Port < 1 || c.Port > 65535 {
		add("port", "%d: must be 1-65535", c.Port)
	}
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		add("tls", "%q is not one of none, starttls, tls", c.TLS)
	}
	if c.QueueSize < 1 || c.QueueSize > 100000 {
		add("queue_size", "%d: must be 1-100000", c.QueueSize)
	}
	if c.Retries < 0 || c.Retries > 10 {
		add("retries", "%d: must be 0-10", c.Retries)
	}
	if c.RetryBackoff <= 0 {
		add("retry_backoff", "must be positive")
	}
	if c.Timeout <= 0 {
		add("timeout", "must be positive")
	}
	if c.WelcomeLinkTTL < time.Minute || c.ResetLinkTTL < time.Minute {
		add("welcome_link_ttl", "welcome_link_ttl and reset_link_ttl must be at least 1m")
	}
	if !(c.ImportRate > 0 && c.ImportRate <= 1000) {
		add("import_rate", "%v: must be more than 0 and at most 1000 (messages per second)", c.ImportRate)
	}
	if strings.ContainsAny(c.Host, " /\r\n") {
		add("host", "%q is not a host name or address", c.Host)
	}
	if (c.Username == "") != (c.Password == "") {
		add("username", "username and password go together")
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			add("ca_file", "%v", err)
		}
	}
	if c.Enabled() {
		if a, err := mail.ParseAddress(c.From); err != nil || a.Address == "" {
			add("from", "%q is not an e-mail address (e.g. \"Hotdesk <hotdesk@example.com>\")", c.From)
		}
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			add("base_url", "%q is not the portal's http(s)://host[:port][/path] address", c.BaseURL)
		}
	}
	return errors.Join(errs...)
}
