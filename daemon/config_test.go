package daemon

import (
	"strings"
	"testing"
)

func TestParseDefaults(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "{}\n"} {
		cfg, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if cfg.DataDir != "/var/lib/hotdesk" || cfg.Log.Level != "info" || cfg.Admin.Listen != ":8081" ||
			cfg.Provisioning.HTTPListen != ":80" || cfg.Provisioning.TFTPListen != ":69" ||
			cfg.DHCP.Mode != "off" || cfg.Store.Driver != "sqlite" || len(cfg.SIP.Listen) != 2 {
			t.Errorf("Parse(%q) defaults wrong: %+v", in, cfg)
		}
	}
}

func TestParseOverrides(t *testing.T) {
	cfg, err := Parse([]byte(`
data_dir: /tmp/x
log: {level: debug, format: json}
sip:
  listen: [udp://127.0.0.1:5070]
  domain: example.com
admin: {listen: "127.0.0.1:9000"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/tmp/x" || cfg.Log.Level != "debug" || cfg.Log.Format != "json" ||
		cfg.SIP.Domain != "example.com" || cfg.SIP.Listen[0] != "udp://127.0.0.1:5070" || cfg.Admin.Listen != "127.0.0.1:9000" {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if !cfg.Explicit("sip.listen") || cfg.Explicit("provisioning.http_listen") {
		t.Errorf("explicit keys wrong: %v", cfg.explicit)
	}
	if cfg.Provisioning.HTTPListen != ":80" {
		t.Errorf("unnamed key lost its default: %q", cfg.Provisioning.HTTPListen)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // every fragment must be in the error
	}{
		{"unknown top key", "data_dir: /x\nfoo: 1\n", []string{"line 2", `unknown key "foo"`}},
		{"unknown nested key", "sip:\n  domain: a\n  lisen: []\n", []string{"line 3", `"sip.lisen"`}},
		{"two unknown keys", "log:\n  levl: x\nadmin:\n  port: 1\n", []string{"line 2", `"log.levl"`, "line 4", `"admin.port"`}},
		{"bad level", "log: {level: loud}\n", []string{"log.level", `"loud"`}},
		{"bad format", "log: {format: xml}\n", []string{"log.format"}},
		{"tiny memory limit", "memory_limit_mb: 8\n", []string{"memory_limit_mb", "at least 32"}},
		{"negative memory limit", "memory_limit_mb: -2\n", []string{"memory_limit_mb"}},
		{"negative max procs", "max_procs: -1\n", []string{"max_procs", "want 0"}},
		{"absurd max procs", "max_procs: 100000\n", []string{"max_procs"}},
		{"bad sip scheme", "sip: {listen: ['sctp://1.2.3.4:5060']}\n", []string{"sip.listen[0]", "scheme"}},
		{"ws without rtp address", "sip: {listen: ['ws://127.0.0.1:5066']}\n", []string{"sip.webrtc.rtp_address", "ws://"}},
		{"wildcard rtp address", "sip: {webrtc: {rtp_address: 0.0.0.0}}\n", []string{"sip.webrtc.rtp_address", "wildcard"}},
		{"bad ice server", "sip: {webrtc: {ice_servers: [{urls: ['http://x']}]}}\n", []string{"sip.webrtc.ice_servers[0]", "stun:"}},
		{"bad ws url", "sip: {webrtc: {ws_url: 'http://x'}}\n", []string{"sip.webrtc.ws_url"}},
		{"tiny recording budget", "sip: {webrtc: {recording_max_bytes: 1000}}\n", []string{"sip.webrtc.recording_max_bytes"}},
		{"negative retention", "sip: {webrtc: {recording_retention: -1h}}\n", []string{"sip.webrtc.recording_retention"}},
		{"recorded number not a number", "sip: {webrtc: {record_numbers: [\"2001\", \"sales\"]}}\n", []string{"sip.webrtc.record_numbers[1]"}},
		{"wss without certificate", "sip: {listen: ['wss://127.0.0.1:5067'], webrtc: {rtp_address: 127.0.0.1}}\n", []string{"tls_cert", "wss://"}},
		{"bad sip port", "sip: {listen: ['udp://1.2.3.4:99999']}\n", []string{"sip.listen[0]", "port"}},
		{"no sip listener", "sip: {listen: []}\n", []string{"sip.listen", "at least one"}},
		{"empty domain", "sip: {domain: ''}\n", []string{"sip.domain"}},
		{"pnp without interface", "sip: {pnp: {enabled: true}}\n", []string{"sip.pnp.interface"}},
		{"voicemail without media address", "sip: {voicemail: {enabled: true}}\n", []string{"sip.voicemail.media_address"}},
		{"voicemail listening off loopback", "sip: {voicemail: {enabled: true, media_address: 10.0.0.5, listen: '0.0.0.0:5070'}}\n",
			[]string{"sip.voicemail.listen", "loopback"}},
		{"voicemail budgets", "sip: {voicemail: {enabled: true, media_address: 10.0.0.5, max_mailbox_mb: 100, max_total_mb: 50}}\n",
			[]string{"sip.voicemail.max_mailbox_mb"}},
		{"blank sha256 client", "sip: {sha256_user_agents: ['']}\n", []string{"sip.sha256_user_agents[0]"}},
		{"bad http listen", "provisioning: {http_listen: 'nonsense'}\n", []string{"provisioning.http_listen"}},
		{"bad host", "admin: {listen: 'example.com:80'}\n", []string{"admin.listen", "IP address"}},
		{"bad dhcp mode", "dhcp: {mode: relay}\n", []string{"dhcp.mode", `"relay"`}},
		{"bad store driver", "store: {driver: mysql}\n", []string{"store.driver"}},
		{"postgres without dsn", "store: {driver: postgres}\n", []string{"store.dsn"}},
		{"event keepalive too short", "store: {driver: postgres, dsn: \"postgres://x/y\", event_keepalive: 10ms}\n", []string{"store.event_keepalive"}},
		{"short cluster secret", "cluster: {secret: short}\n", []string{"cluster.secret"}},
		{"srv domain as an IP", "cluster: {srv_domain: 10.0.0.1}\n", []string{"cluster.srv_domain"}},
		{"wrong type", "sip: {listen: 5}\n", []string{"line 1", "wrong type"}},
		{"tls half", "admin: {tls_cert: /a.pem}\n", []string{"admin.tls_cert"}},
		{"not a mapping", "- a\n- b\n", []string{"mapping"}},
		{"empty data dir", "data_dir: ''\n", []string{"data_dir"}},
		{"metrics user without password", "admin: {metrics: {username: prom}}\n", []string{"admin.metrics.username"}},
		{"short metrics token", "admin: {metrics: {bearer_token: short}}\n", []string{"admin.metrics.bearer_token"}},
		{"bad metrics listen", "admin: {metrics: {listen: nonsense}}\n", []string{"admin.metrics.listen"}},
		{"short token lifetime", "admin: {api: {token_ttl: 0s}}\n", []string{"admin.api", "token_ttl"}},
		{"bad mail tls", "mail: {tls: ssl}\n", []string{"mail.tls", `"ssl"`}},
		{"mail without sender and links", "mail: {host: smtp.example.com}\n", []string{"mail.from", "mail.base_url"}},
		{"mail user without password", "mail: {username: u}\n", []string{"mail.username"}},
		{"firmware for an unknown vendor", "provisioning: {firmware_urls: {acme: 'http://x/fw'}}\n", []string{"provisioning.firmware_urls.acme", "unknown vendor"}},
		{"firmware not a URL", "provisioning: {firmware_urls: {yealink: 'fw.rom'}}\n", []string{"provisioning.firmware_urls.yealink", "absolute"}},
		{"firmware URL with credentials", "provisioning: {firmware_urls: {cisco: 'http://u:p@x/fw'}}\n", []string{"provisioning.firmware_urls.cisco", "credentials"}},
		{"bad forgot rate", "admin: {web: {forgot_rate: 0}}\n", []string{"admin.web", "forgot_rate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse accepted %q", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMaskedHidesSecrets(t *testing.T) {
	cfg, err := Parse([]byte("admin: {initial_password: s3cret-pw}\nstore: {driver: postgres, dsn: 'postgres://u:pw@h/db'}\n" +
		"mail: {username: mailer, password: smtp-pw-1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfg.Masked()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret-pw", "pw@h", "smtp-pw-1"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("masked config shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(string(out), "********") {
		t.Errorf("no mask in output:\n%s", out)
	}
}

func TestDemoConfigKeepsNamedListeners(t *testing.T) {
	cfg, err := Parse([]byte("provisioning: {http_listen: '127.0.0.1:18080'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := DemoConfig(cfg)
	if d.Provisioning.HTTPListen != "127.0.0.1:18080" {
		t.Errorf("demo moved a named listener: %q", d.Provisioning.HTTPListen)
	}
	if d.Provisioning.TFTPListen != "127.0.0.1:6969" || d.Admin.Listen != "127.0.0.1:8081" || d.SIP.Domain != demoDomain {
		t.Errorf("demo did not move unnamed listeners: %+v", d)
	}
}
