package portal

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		key string
		mod func(c *Config)
	}{
		{"max_body_bytes", func(c *Config) { c.MaxBodyBytes = 0 }},
		{"max_import_bytes", func(c *Config) { c.MaxImportBytes = -1 }},
		{"default_page_size", func(c *Config) { c.DefaultPageSize = c.MaxPageSize + 1 }},
		{"custom_fields", func(c *Config) { c.CustomFields = []string{"a", "b", "c", "d"} }},
		{"auth_cache_ttl", func(c *Config) { c.AuthCacheTTL = -1 }},
		{"lockout_threshold", func(c *Config) { c.LockoutThreshold = 0 }},
		{"lockout_base", func(c *Config) { c.LockoutBase = 0 }},
		{"third_party.port", func(c *Config) { c.ThirdParty.Port = 70000 }},
		{"third_party.transport", func(c *Config) { c.ThirdParty.Transport = "sctp" }},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
			t.Errorf("%s: got %v", tc.key, err)
		}
	}
}
