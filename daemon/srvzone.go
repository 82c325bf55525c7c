package daemon

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// SRVZone is the DNS records an admin publishes for cluster.srv_domain:
// a NAPTR per transport (Polycom and Yealink look NAPTR up first), an
// SRV per node and transport, equal priority and weight so phones
// spread over the nodes and fail over among them (RFC 3263, RFC 2782),
// and an A record for a node given by IP address (an SRV target must be
// a name). "" without a domain.
func (c Config) SRVZone() string {
	d := strings.TrimSuffix(c.Cluster.SRVDomain, ".")
	if d == "" {
		return ""
	}
	port, tcp := 5060, false
	for _, l := range c.SIP.Listen {
		u, err := url.Parse(l)
		if err != nil {
			continue
		}
		if _, p, err := net.SplitHostPort(u.Host); err == nil && u.Scheme == "udp" && p != "0" {
			port, _ = strconv.Atoi(p)
		}
		tcp = tcp || u.Scheme == "tcp"
	}
	transports := []struct{ naptr, srv string }{{"SIP+D2U", "_sip._udp"}}
	if tcp {
		transports = append(transports, struct{ naptr, srv string }{"SIP+D2T", "_sip._tcp"})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; DNS records for cluster.srv_domain %s (publish them in its zone)\n", d)
	for i, t := range transports {
		fmt.Fprintf(&b, "%s. IN NAPTR %d 50 \"s\" \"%s\" \"\" %s.%s.\n", d, 10*(i+1), t.naptr, t.srv, d)
	}
	nodes := c.Cluster.Nodes
	if len(nodes) == 0 {
		fmt.Fprintf(&b, "; cluster.nodes is empty: list every node there to get its SRV records\n")
	}
	var addrs []string
	for i, n := range nodes {
		host, p := n, port
		if h, ps, err := net.SplitHostPort(n); err == nil {
			host = h
			p, _ = strconv.Atoi(ps)
		}
		target := host + "."
		if net.ParseIP(host) != nil {
			target = fmt.Sprintf("node%d.%s.", i+1, d)
			rr := "A"
			if strings.Contains(host, ":") {
				rr = "AAAA"
			}
			addrs = append(addrs, fmt.Sprintf("%s IN %s %s\n", target, rr, host))
		}
		for _, t := range transports {
			fmt.Fprintf(&b, "%s.%s. IN SRV 10 10 %d %s\n", t.srv, d, p, target)
		}
	}
	for _, a := range addrs {
		b.WriteString(a)
	}
	return b.String()
}
