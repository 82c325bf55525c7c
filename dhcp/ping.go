package dhcp

import (
	"context"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// icmpPing sends one ICMP echo to ip and reports whether it answered within
// timeout. It needs a raw socket (root or CAP_NET_RAW); when it cannot open
// one it reports false, so ping-before-offer degrades to offering.
func icmpPing(ctx context.Context, ip netip.Addr, timeout time.Duration) bool {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return false
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	seq := int(time.Now().UnixNano() & 0xffff)
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("hotdesk-dhcp")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return false
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: ip.AsSlice()}); err != nil {
		return false
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		rm, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || rm.Type != ipv4.ICMPTypeEchoReply || peer.String() != ip.String() {
			continue
		}
		if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
			return true
		}
	}
}
