// Package dhcpc is a small DHCPv4 client for load generation: a message
// codec written from RFC 2131/2132/3396 (deliberately not the daemon's
// library, so the two cannot share a parsing mistake) and a client that
// runs the DISCOVER→OFFER→REQUEST→ACK exchange of many simulated handsets
// over one UDP socket, telling the replies apart by transaction id.
package dhcpc
