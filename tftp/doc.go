// Package tftp serves hotdesk's virtual file namespace (rendered configs,
// static firmware, phone uploads) over TFTP on pin/tftp/v3, with name
// sanitising, per-transfer limits and metrics in front of a FileSystem the
// daemon implements.
//
// # The pin/tftp fork
//
// go.mod replaces github.com/pin/tftp/v3 v3.1.0 with tftp/internal/pintftp:
// v3.1.0 unmodified (packet.go gofmt'd) plus two patches, kept until
// upstream takes them. Each is an upstream pull request, whose texts
// follow. The first:
//
//	server: cache the interface MTU instead of a netlink dump per request
//
//	processRequest4/6 and the single-port loop call net.InterfaceByIndex for
//	every RRQ/WRQ to size blksize from the interface MTU. On Linux that is a
//	full RTM_GETLINK dump (socket, sendto, several recvfrom, parse every
//	link), done on the serial request loop: under many small transfers it
//	took ~20 % of the server's CPU and capped the rate of new transfers
//	(1,000 × 5 KiB with 16 concurrent curl clients on loopback: 3,750 →
//	6,480 files/s on 2 cores).
//
//	Server.interfaceMTU now keeps each index's MTU in a sync.Map for 10 s, so
//	an MTU change is still seen within that time. No API change; a test
//	covers the cache and its expiry.
//
// The second:
//
//	sender: read ACKs in place and keep the peer's address per transfer
//
//	Every DATA block waits for an ACK, and each one cost two allocations:
//	connConnection.readFrom went through ReadFromUDP (a new *net.UDPAddr
//	per datagram), and parsePacket boxed the ACK in an interface. A 5 KiB
//	read at blksize 512 (eleven blocks) so allocated 22 times for its ACKs
//	alone: 84 allocations per transfer, now 53, with less GC under many
//	small transfers.
//
//	readFrom now uses ReadFromUDPAddrPort and returns the same *UDPAddr
//	while the peer stays the same (a transfer hears from one peer; a
//	different one gets a new value, never a changed one). sendDatagram
//	checks for an ACK by its opcode before parsePacket, with the same
//	checks as before (length, block number; TID unchanged). No API change.
//
// The fork's test runs inside it: cd tftp/internal/pintftp && go test .
// tftp/bench/tftp_vs_dnsmasq.sh measures the server against dnsmasq.
package tftp
