package dhcp

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	raw, err := os.ReadFile("testdata/simple.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.LeaseTime != time.Hour || cfg.DeclineHold != 30*time.Minute || cfg.Range[1] != "10.0.0.199" ||
		cfg.VendorClasses[0].Options[160] != "http://10.0.0.1:8080/polycom/" || len(cfg.Pools) != 1 ||
		cfg.Workers != 4 || cfg.Listen != "0.0.0.0:67" {
		t.Errorf("decoded %+v", cfg)
	}
	s, err := compile(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.pools) != 2 || s.pools[1].leaseTime != time.Hour || string(s.global[101]) != "Europe/Berlin" {
		t.Errorf("compiled %+v", s)
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bad mode", func(c *Config) { c.Mode = "relay" }, "mode: "},
		{"server needs subnet", func(c *Config) { c.Subnet = ""; c.Range = nil; c.Reservations = nil }, "subnet: required"},
		{"bad subnet", func(c *Config) { c.Subnet = "10.0.0.0/33" }, "subnet: "},
		{"range outside subnet", func(c *Config) { c.Range = []string{"10.0.0.10", "10.0.1.10"} }, "range[1]: "},
		{"range reversed", func(c *Config) { c.Range = []string{"10.0.0.50", "10.0.0.10"} }, "range: last"},
		{"range one value", func(c *Config) { c.Range = []string{"10.0.0.50"} }, "range: must be"},
		{"broadcast in range", func(c *Config) { c.Range = []string{"10.0.0.10", "10.0.0.255"} }, "range[1]: "},
		{"bad router", func(c *Config) { c.Router = "gw" }, "router: "},
		{"bad dns", func(c *Config) { c.DNS = []string{"10.0.0.2", "::1"} }, "dns[1]: "},
		{"short lease", func(c *Config) { c.LeaseTime = time.Second }, "lease_time: "},
		{"bad reservation mac", func(c *Config) { c.Reservations = []Reservation{{MAC: "zz", Address: "10.0.0.5"}} }, "reservations[0].mac: "},
		{"reservation outside subnet", func(c *Config) { c.Reservations = []Reservation{{MAC: "00:04:f2:00:00:01", Address: "10.9.0.5"}} }, "reservations[0].address: "},
		{"duplicate reservation address", func(c *Config) {
			c.Reservations = []Reservation{{MAC: "00:04:f2:00:00:01", Address: "10.0.0.5"}, {MAC: "00:04:f2:00:00:02", Address: "10.0.0.5"}}
		}, "reservations[1].address: "},
		{"bad extra pool", func(c *Config) { c.Pools = []PoolConfig{{Subnet: "10.1.0.0/24", Range: []string{"10.1.0.1", "x"}}} }, "pools[0].range[1]: "},
		{"overlapping pools", func(c *Config) { c.Pools = []PoolConfig{{Subnet: "10.0.0.128/25"}} }, "pools[0].subnet: "},
		{"owned option", func(c *Config) { c.Options = map[int]string{53: "x"} }, "options[53]: "},
		{"bad 150", func(c *Config) { c.Option150 = []string{"tftp"} }, "option150[0]: "},
		{"bad class glob", func(c *Config) { c.VendorClasses = []VendorClass{{Match: "[Poly"}} }, "vendor_classes[0].match: "},
		{"empty class", func(c *Config) { c.VendorClasses = []VendorClass{{}} }, "vendor_classes[0].match: required"},
		{"class ip option", func(c *Config) { c.VendorClasses = []VendorClass{{Match: "x", Options: map[int]string{150: "a.b"}}} }, "vendor_classes[0].options[150]: "},
		{"class 43 too long", func(c *Config) {
			c.VendorClasses = []VendorClass{{Match: "x", Option43: map[int]string{1: strings.Repeat("a", 200), 2: strings.Repeat("b", 100)}}}
		}, "vendor_classes[0].option43: "},
		{"bad hex", func(c *Config) { c.Option43 = map[int]string{1: "hex:zz"} }, "option43[1]: "},
		{"decline hold", func(c *Config) { c.DeclineHold = 0 }, "decline_hold: "},
		{"time offset", func(c *Config) { c.TimeOffset = 1500 * time.Millisecond }, "time_offset: "},
		{"listen", func(c *Config) { c.Listen = "0.0.0.0" }, "listen: "},
		{"server id", func(c *Config) { c.ServerID = "::1" }, "server_id: "},
		{"workers", func(c *Config) { c.Workers = 0 }, "workers: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig()
			c.mod(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("Validate() = %v, want prefix %q", err, c.want)
			}
		})
	}
}
