package tftp

import (
	"errors"
	"fmt"
	"time"
)

// Config is the `tftp` section of hotdesk.yaml.
type Config struct {
	// MaxUploadBytes caps one write request; a larger upload is aborted with
	// an error packet and nothing is committed.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// Timeout is how long the server waits for each ACK or DATA before it
	// retransmits (the client's RFC 2349 timeout option is not honoured by
	// pin/tftp v3.1.0).
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a packet is retransmitted before the
	// transfer is abandoned; an unresponsive client is dropped after about
	// Timeout × (Retries+1).
	Retries int `yaml:"retries"`
	// TransferTimeout bounds a whole transfer, however responsive the client.
	TransferTimeout time.Duration `yaml:"transfer_timeout"`
	// BlockSizeMax caps the RFC 2348 blksize a client may negotiate; 1468
	// fills a 1500-byte Ethernet frame. The interface MTU caps it as well.
	BlockSizeMax int `yaml:"block_size_max"`
	// MaxTransfers caps transfers in progress; further requests get an
	// error packet until one ends.
	MaxTransfers int `yaml:"max_transfers"`
	// MaxTransfersPerClient caps transfers in progress from one IP address,
	// so a looping or duplicated request stream cannot take them all.
	MaxTransfersPerClient int `yaml:"max_transfers_per_client"`
	// RequestRatePerClient and RequestBurstPerClient throttle new transfers
	// from one IP address (a token bucket): a spoofed request stream cannot
	// make the server send file data at a victim faster than this.
	RequestRatePerClient  float64 `yaml:"request_rate_per_client"`
	RequestBurstPerClient int     `yaml:"request_burst_per_client"`
	// MaxUnacknowledgedPerClient caps read transfers from one IP address
	// whose first block is not yet acknowledged. A spoofed RRQ names a victim
	// that never acknowledges, so it gets one first block (with its bounded
	// retransmits) at a time, not one per request.
	MaxUnacknowledgedPerClient int `yaml:"max_unacknowledged_per_client"`
}

// DefaultConfig returns the defaults documented in packaging/hotdesk.yaml.
func DefaultConfig() Config {
	return Config{
		MaxUploadBytes:        1 << 20,
		Timeout:               2 * time.Second,
		Retries:               3,
		TransferTimeout:       10 * time.Minute,
		BlockSizeMax:          1468,
		MaxTransfers:          512,
		MaxTransfersPerClient: 32,
		RequestRatePerClient:  10,
		RequestBurstPerClient: 40,
		// Phones fetch their files one after another.
		MaxUnacknowledgedPerClient: 1,
	}
}

// Validate reports every invalid key, named relative to the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.MaxUploadBytes < 1 || c.MaxUploadBytes > 1<<30 {
		bad("max_upload_bytes", "must be between 1 and 1073741824, got %d", c.MaxUploadBytes)
	}
	if c.Timeout < 100*time.Millisecond || c.Timeout > time.Minute {
		bad("timeout", "must be between 100ms and 1m, got %s", c.Timeout)
	}
	if c.Retries < 1 || c.Retries > 20 {
		bad("retries", "must be between 1 and 20, got %d", c.Retries)
	}
	if c.TransferTimeout < time.Second || c.TransferTimeout > 24*time.Hour {
		bad("transfer_timeout", "must be between 1s and 24h, got %s", c.TransferTimeout)
	}
	// pin/tftp ignores SetBlockSize(512), so 512 could not be enforced.
	if c.BlockSizeMax < 513 || c.BlockSizeMax > 65464 {
		bad("block_size_max", "must be between 513 and 65464, got %d", c.BlockSizeMax)
	}
	if c.MaxTransfers < 1 || c.MaxTransfers > 65536 {
		bad("max_transfers", "must be between 1 and 65536, got %d", c.MaxTransfers)
	}
	if c.MaxTransfersPerClient < 1 || c.MaxTransfersPerClient > c.MaxTransfers {
		bad("max_transfers_per_client", "must be between 1 and max_transfers (%d), got %d",
			c.MaxTransfers, c.MaxTransfersPerClient)
	}
	if c.RequestRatePerClient <= 0 || c.RequestRatePerClient > 100000 {
		bad("request_rate_per_client", "must be above 0 and at most 100000, got %g", c.RequestRatePerClient)
	}
	if c.RequestBurstPerClient < 1 || c.RequestBurstPerClient > 100000 {
		bad("request_burst_per_client", "must be between 1 and 100000, got %d", c.RequestBurstPerClient)
	}
	if c.MaxUnacknowledgedPerClient < 1 || c.MaxUnacknowledgedPerClient > c.MaxTransfersPerClient {
		bad("max_unacknowledged_per_client", "must be between 1 and max_transfers_per_client (%d), got %d",
			c.MaxTransfersPerClient, c.MaxUnacknowledgedPerClient)
	}
	return errors.Join(errs...)
}
