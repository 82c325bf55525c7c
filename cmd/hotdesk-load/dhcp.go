package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/dhcpc"
	"hotdesk/cmd/hotdesk-load/internal/handset"
)

// dhcpConfig is the storm's optional DHCP step.
type dhcpConfig struct {
	iface       string
	listen      string
	server      string
	vendorClass string
	rto         time.Duration
	tries       int
}

func dhcpFlags(fs *flag.FlagSet, c *dhcpConfig) {
	fs.StringVar(&c.iface, "dhcp", "", "before booting, each handset gets a lease by DHCP on this interface (one shared socket on "+
		"-dhcp-listen, needs root) and uses the leased address as its source; the address must be local "+
		"(bench/storm.sh DHCP=1 adds the pool as a local route)")
	fs.StringVar(&c.listen, "dhcp-listen", "0.0.0.0:68", "address of the shared DHCP client socket")
	fs.StringVar(&c.server, "dhcp-server", "255.255.255.255:67", "where DISCOVER and REQUEST go")
	fs.StringVar(&c.vendorClass, "dhcp-vendor-class", "", "option 60 every handset sends (default: each vendor's own, e.g. Polycom-VVX400)")
	fs.DurationVar(&c.rto, "dhcp-rto", time.Second, "first DHCP retransmission timeout, doubled per try (jittered ±25%)")
	fs.IntVar(&c.tries, "dhcp-tries", 4, "transmissions of DISCOVER, and of REQUEST, before the handset gives up")
}

func (c dhcpConfig) validate() error {
	if c.iface == "" {
		return nil
	}
	switch {
	case c.rto <= 0 || c.rto > 30*time.Second:
		return usageErr("-dhcp-rto must be in (0, 30s]")
	case c.tries < 1 || c.tries > 10:
		return usageErr("-dhcp-tries must be 1..10")
	}
	for _, f := range [][2]string{{"-dhcp-listen", c.listen}, {"-dhcp-server", c.server}} {
		if ap, err := netip.ParseAddrPort(f[1]); err != nil || !ap.Addr().Is4() {
			return usageErr("%s %q: want IPv4:port", f[0], f[1])
		}
	}
	return nil
}

// stormDHCP is the client every handset of a storm shares, and the figures
// the storm reports about it.
type stormDHCP struct {
	client        *dhcpc.Client
	leases        atomic.Int64
	from160       atomic.Int64
	from66        atomic.Int64
	noBootServer  atomic.Int64
	retransmitted atomic.Int64
}

func newStormDHCP(c dhcpConfig) (*stormDHCP, error) {
	conn, err := dhcpc.ListenInterface(c.iface, c.listen)
	if err != nil {
		return nil, fmt.Errorf("-dhcp: %w", err)
	}
	srv := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(c.server)) // checked by validate
	return &stormDHCP{client: dhcpc.New(dhcpc.Config{Conn: conn, Server: srv, VendorClass: c.vendorClass,
		RTO: c.rto, Tries: c.tries})}, nil
}

func (d *stormDHCP) close() { _ = d.client.Close() }

// figures adds the DHCP counters to a summary's figures.
func (d *stormDHCP) figures(into map[string]float64) {
	st := d.client.Stats()
	for k, v := range map[string]int64{
		"dhcp_leases": d.leases.Load(), "dhcp_boot_server_option160": d.from160.Load(),
		"dhcp_boot_server_option66": d.from66.Load(), "dhcp_leases_without_boot_server": d.noBootServer.Load(),
		"dhcp_handsets_retransmitting": d.retransmitted.Load(), "dhcp_sent": st.Sent, "dhcp_retransmits": st.Retransmits,
		"dhcp_replies_unmatched": st.Unmatched, "dhcp_replies_wrong_chaddr": st.WrongHW,
		"dhcp_replies_malformed": st.Malformed, "dhcp_replies_overflow": st.Overflow,
	} {
		into[k] = float64(v)
	}
}

// lease runs handset mac's DHCP step and returns its source address and
// provisioning base: -target when given, else the lease's boot server, as
// a phone set to take it from DHCP does.
func (s *storm) lease(ctx context.Context, mac, vendorClass string) (local, base string, err error) {
	hw, err := hex.DecodeString(mac)
	if err != nil {
		return "", "", &handset.Error{Kind: "dhcp_bad_mac", Err: err}
	}
	var l dhcpc.Lease
	if err := s.step("dhcp", func() (err error) { l, err = s.dhcp.client.AcquireAs(ctx, hw, vendorClass); return err }); err != nil {
		var de *dhcpc.Error
		if errors.As(err, &de) {
			return "", "", &handset.Error{Kind: "dhcp_" + de.Kind, Err: err}
		}
		return "", "", err
	}
	s.rec.Observe("dhcp_offer", l.OfferAfter)
	s.rec.Observe("dhcp_ack", l.AckAfter)
	s.rec.Mark("all_leased", time.Since(s.start))
	s.dhcp.count(l)
	if err := usableSource(l.Addr); err != nil {
		return "", "", &handset.Error{Kind: "dhcp_addr_unusable", Err: err}
	}
	if s.cfg.targetSet {
		return l.Addr.String(), s.cfg.target, nil
	}
	if l.BootServer == "" {
		return "", "", &handset.Error{Kind: "dhcp_no_option66", Err: errors.New("ACK has neither option 160 nor 66")}
	}
	if base, err = dhcpc.BootURL(l.BootServer); err != nil {
		return "", "", &handset.Error{Kind: "dhcp_boot_server_unusable", Err: err}
	}
	return l.Addr.String(), base, nil
}

func (d *stormDHCP) count(l dhcpc.Lease) {
	d.leases.Add(1)
	switch l.BootOption {
	case dhcpc.OptPolycomBoot:
		d.from160.Add(1)
	case dhcpc.OptTFTPServer:
		d.from66.Add(1)
	default:
		d.noBootServer.Add(1)
	}
	if l.Retransmits > 0 {
		d.retransmitted.Add(1)
	}
}

// usableSource checks the leased address can be bound here, so a missing
// local route shows as its own error kind, not as an HTTP connect failure.
func usableSource(a netip.Addr) error {
	pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return fmt.Errorf("leased %v is not a local address (add it, or a local route for the pool): %w", a, err)
	}
	return pc.Close()
}
