package tftp

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantKey string
	}{
		{"upload 0", func(c *Config) { c.MaxUploadBytes = 0 }, "max_upload_bytes:"},
		{"timeout tiny", func(c *Config) { c.Timeout = time.Millisecond }, "timeout:"},
		{"retries 0", func(c *Config) { c.Retries = 0 }, "retries:"},
		{"transfer timeout 0", func(c *Config) { c.TransferTimeout = 0 }, "transfer_timeout:"},
		{"blksize 512", func(c *Config) { c.BlockSizeMax = 512 }, "block_size_max:"},
		{"blksize huge", func(c *Config) { c.BlockSizeMax = 70000 }, "block_size_max:"},
		{"transfers 0", func(c *Config) { c.MaxTransfers = 0 }, "max_transfers:"},
		{"per client > total", func(c *Config) { c.MaxTransfers, c.MaxTransfersPerClient = 4, 5 }, "max_transfers_per_client:"},
		{"rate 0", func(c *Config) { c.RequestRatePerClient = 0 }, "request_rate_per_client:"},
		{"burst 0", func(c *Config) { c.RequestBurstPerClient = 0 }, "request_burst_per_client:"},
		{"unacked 0", func(c *Config) { c.MaxUnacknowledgedPerClient = 0 }, "max_unacknowledged_per_client:"},
		{"unacked > per client", func(c *Config) { c.MaxUnacknowledgedPerClient = 33 }, "max_unacknowledged_per_client:"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.wantKey) {
			t.Errorf("%s: err = %v, want prefix %q", tt.name, err, tt.wantKey)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	c := DefaultConfig()
	src := "max_upload_bytes: 2048\ntimeout: 1500ms\nretries: 4\ntransfer_timeout: 2m\nblock_size_max: 1024\nmax_transfers: 10\nmax_transfers_per_client: 3\n" +
		"request_rate_per_client: 2.5\nrequest_burst_per_client: 7\nmax_unacknowledged_per_client: 2\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{2048, 1500 * time.Millisecond, 4, 2 * time.Minute, 1024, 10, 3, 2.5, 7, 2}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
}
