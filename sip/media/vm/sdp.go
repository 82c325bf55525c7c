package vm

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrNoCodec is an offer with no G.711 audio (or no audio at all).
var ErrNoCodec = errors.New("vm: offer has no PCMU/PCMA audio")

// offer is what voicemail needs of an SDP offer (RFC 4566): where to send
// audio, the codec (the first of PCMU/PCMA in the offer's order) and the
// telephone-event payload type (RFC 4733), 0 when none.
type offer struct {
	addr netip.AddrPort
	pt   uint8
	dtmf uint8
}

func parseOffer(body []byte) (offer, error) {
	var o offer
	var conn netip.Addr
	var port int
	var pts []string
	inAudio, seenAudio := false, false
	for i, line := range strings.Split(string(body), "\n") {
		if i > 200 {
			return offer{}, errors.New("vm: SDP of more than 200 lines")
		}
		line = strings.TrimRight(line, "\r")
		k, v, ok := strings.Cut(line, "=")
		if !ok || len(k) != 1 {
			continue
		}
		switch k {
		case "m":
			inAudio = false
			f := strings.Fields(v)
			if len(f) >= 4 && f[0] == "audio" && !seenAudio && strings.HasPrefix(f[2], "RTP/AVP") {
				p, err := strconv.Atoi(f[1])
				if err != nil || p <= 0 || p > 65535 {
					return offer{}, fmt.Errorf("vm: audio port %q", f[1])
				}
				inAudio, seenAudio, port, pts = true, true, p, f[3:]
			}
		case "c":
			f := strings.Fields(v)
			if len(f) == 3 && f[0] == "IN" && (inAudio || !seenAudio) {
				a, err := netip.ParseAddr(strings.SplitN(f[2], "/", 2)[0])
				if err != nil {
					return offer{}, fmt.Errorf("vm: connection address %q: %w", f[2], err)
				}
				conn = a
			}
		case "a":
			if inAudio {
				if rest, ok := strings.CutPrefix(v, "rtpmap:"); ok {
					num, enc, _ := strings.Cut(rest, " ")
					if n, err := strconv.Atoi(num); err == nil && n >= 96 && n <= 127 &&
						strings.HasPrefix(strings.ToLower(enc), "telephone-event/8000") {
						o.dtmf = uint8(n)
					}
				}
			}
		}
	}
	found := false
	for _, p := range pts {
		if p == "0" || p == "8" {
			n, _ := strconv.Atoi(p)
			o.pt, found = uint8(n), true
			break
		}
	}
	if !found || !conn.IsValid() {
		return offer{}, ErrNoCodec
	}
	// 0.0.0.0 (a held stream, RFC 3264 §8.4) would send to this host
	// itself, and a multicast group to a whole network.
	if conn.IsUnspecified() || conn.IsMulticast() {
		return offer{}, fmt.Errorf("vm: connection address %s: %w", conn, ErrNoCodec)
	}
	o.addr = netip.AddrPortFrom(conn.Unmap(), uint16(port))
	return o, nil
}

// answer is our SDP answer: one audio stream at local with the chosen
// codec and telephone-event when the offer had it.
func answer(local netip.AddrPort, o offer, sessID int64) []byte {
	ipv := "IP4"
	if local.Addr().Is6() {
		ipv = "IP6"
	}
	codec := map[uint8]string{ptPCMU: "PCMU", ptPCMA: "PCMA"}[o.pt]
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=hotdesk %d %d IN %s %s\r\ns=voicemail\r\nc=IN %s %s\r\nt=0 0\r\n",
		sessID, sessID, ipv, local.Addr(), ipv, local.Addr())
	fmts := strconv.Itoa(int(o.pt))
	if o.dtmf != 0 {
		fmts += " " + strconv.Itoa(int(o.dtmf))
	}
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %s\r\na=rtpmap:%d %s/8000\r\n", local.Port(), fmts, o.pt, codec)
	if o.dtmf != 0 {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-15\r\n", o.dtmf, o.dtmf)
	}
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(b.String())
}
