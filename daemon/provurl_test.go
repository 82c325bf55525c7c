package daemon

import "testing"

// The URL phones are told (option 66, plug-and-play) carries the path
// prefix the namespace is served under, and the listener actually bound.
func TestProvBaseURL(t *testing.T) {
	for _, c := range []struct {
		name, base, prefix, http, https, want string
	}{
		{"configured", "http://pbx.example/prov", "", "0.0.0.0:8080", "", "http://pbx.example/prov/"},
		{"bound port", "", "", "192.0.2.1:8080", "", "http://192.0.2.1:8080/"},
		{"default port", "", "", "192.0.2.1:80", "", "http://192.0.2.1/"},
		{"prefix", "", "/provisioning", "192.0.2.1:80", "", "http://192.0.2.1/provisioning/"},
		{"https only", "", "/p", "", "192.0.2.1:443", "https://192.0.2.1/p/"},
		{"v6", "", "", "[2001:db8::1]:8080", "", "http://[2001:db8::1]:8080/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			cfg.Provisioning.BaseURL, cfg.Provisioning.PathPrefix = c.base, c.prefix
			if got := provBaseURL(cfg, Addrs{HTTP: c.http, HTTPS: c.https}, ""); got != c.want {
				t.Errorf("provBaseURL = %q, want %q", got, c.want)
			}
		})
	}
}
