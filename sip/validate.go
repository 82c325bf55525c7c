package sip

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// validate applies the checks sipgo's parser leaves to us (RFC 3261 §8.2,
// RFC 4475): it returns an error response, or drop when no answer can be
// routed (no Via).
func (s *Server) validate(req *sip.Request, rawChecked bool) (res *sip.Response, drop bool) {
	via := req.Via()
	if via == nil || via.Host == "" {
		return nil, true
	}
	// sipgo's parser lets a bare CR or LF inside a header value; such a
	// value would break (or inject into) the headers we copy into answers.
	// The UDP path checks the raw bytes instead (cheaper, see cleanHeaders).
	if !rawChecked {
		var f crlfFinder
		for _, h := range req.Headers() {
			if hasCRLF(h, &f) {
				return nil, true
			}
		}
	}
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		return s.reply(req, 400, "Missing Mandatory Header"), false
	}
	if countHeaders(req.Headers(), "content-length") > 1 {
		return s.reply(req, 400, "Multiple Content-Length"), false
	}
	if req.SipVersion != "SIP/2.0" {
		return s.reply(req, 505, "Version Not Supported"), false
	}
	if req.CSeq().MethodName != req.Method {
		return s.reply(req, 400, "CSeq Method Mismatch"), false
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips":
	default:
		return s.reply(req, 416, "Unsupported URI Scheme"), false
	}
	if req.Recipient.Host == "" {
		return s.reply(req, 400, "Invalid Request-URI"), false
	}
	if req.Method == sip.REGISTER {
		to := req.To().Address
		if sc := strings.ToLower(to.Scheme); sc != "sip" && sc != "sips" || to.Host == "" || to.User == "" {
			return s.reply(req, 400, "Invalid To"), false
		}
		if strings.ContainsAny(req.CallID().Value(), " \t") {
			return s.reply(req, 400, "Invalid Call-ID"), false
		}
	}
	return nil, false
}

// crlfFinder is written a header (StringWrite) and notes any CR or LF:
// checking without building each value as a string (Value) saves ~100
// allocations per call through the proxy.
type crlfFinder struct{ found bool }

// WriteByte lets sipgo write numbers (ports, CSeq) without a string.
func (f *crlfFinder) WriteByte(c byte) error {
	if c == '\r' || c == '\n' {
		f.found = true
	}
	return nil
}

func (f *crlfFinder) WriteString(s string) (int, error) {
	if !f.found && strings.ContainsAny(s, "\r\n") {
		f.found = true
	}
	return len(s), nil
}

// cleanHeaders reports whether the header section of a raw message has no
// CR or LF outside CRLF line ends.
func cleanHeaders(data []byte) bool {
	for i, c := range data {
		switch c {
		case '\r':
			if i+1 >= len(data) || data[i+1] != '\n' {
				return false
			}
		case '\n':
			if i == 0 || data[i-1] != '\r' {
				return false
			}
			if i+2 < len(data) && data[i+1] == '\r' && data[i+2] == '\n' {
				return true // end of headers; the body may hold anything
			}
		}
	}
	return true
}

// hasCRLF reports whether a header holds a CR or LF. A Via (the most
// written header, one or two per request) is checked field by field:
// writing it converts its port and copies its parameters.
func hasCRLF(h sip.Header, f *crlfFinder) bool {
	if v, ok := h.(*sip.ViaHeader); ok {
		if strings.ContainsAny(v.ProtocolName, "\r\n") || strings.ContainsAny(v.ProtocolVersion, "\r\n") ||
			strings.ContainsAny(v.Transport, "\r\n") || strings.ContainsAny(v.Host, "\r\n") {
			return true
		}
		for _, kv := range v.Params {
			if strings.ContainsAny(kv.K, "\r\n") || strings.ContainsAny(kv.V, "\r\n") {
				return true
			}
		}
		return false
	}
	h.StringWrite(f)
	return f.found
}

// countHeaders counts the headers of a lower-case name, without
// collecting them as GetHeaders does.
func countHeaders(hs []sip.Header, lower string) int {
	n := 0
	for _, h := range hs {
		if name := h.Name(); len(name) == len(lower) && strings.EqualFold(name, lower) {
			n++
		}
	}
	return n
}
