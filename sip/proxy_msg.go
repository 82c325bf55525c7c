package sip

import (
	"context"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// branchPrefix marks the Via branches this proxy generates; the hash after
// it identifies the request for loop detection (RFC 3261 §16.6 step 8).
const branchPrefix = sip.RFC3261BranchMagicCookie + "hd"

// noBuild is passed to sipgo's client so it sends our request untouched.
func noBuild(*sipgo.Client, *sip.Request) error { return nil }

// check applies what every proxied request must pass (RFC 3261 §16.3):
// syntax, Max-Forwards, loops, Proxy-Require. It returns an answer to send
// (nil = go on) and drop=true when nothing can be answered.
func (p *proxy) check(req *sip.Request) (res *sip.Response, drop bool) {
	if res, drop := p.s.validate(req, false); drop || res != nil {
		if drop {
			p.m.dropped.WithLabelValues("invalid").Inc()
		}
		return res, drop
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return p.reply(req, 483, "Too Many Hops"), false
	}
	if p.looped(req) {
		return p.reply(req, 482, "Loop Detected"), false
	}
	if hs := req.GetHeaders("Proxy-Require"); len(hs) > 0 && !req.IsAck() && !req.IsCancel() {
		res := p.reply(req, 420, "Bad Extension")
		var tags []string
		for _, h := range hs {
			tags = append(tags, stripCRLF(h.Value()))
		}
		res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(tags, ", ")))
		return res, false
	}
	return nil, false
}

// loopHash identifies a request as it arrived, before we retarget it:
// FNV-1a over its Request-URI, tags, Call-ID, CSeq number and Routes,
// hashed as sipgo writes them (no strings built: this runs for every
// request the proxy routes).
func loopHash(req *sip.Request) string {
	h := newFNV()
	req.Recipient.StringWrite(h)
	if f := req.From(); f != nil {
		t, _ := f.Params.Get("tag")
		h.WriteString(t)
	}
	if t := req.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		h.WriteString(tag)
	}
	if c := req.CallID(); c != nil {
		h.WriteString(c.Value())
	}
	if c := req.CSeq(); c != nil {
		var b [20]byte
		for _, d := range strconv.AppendUint(b[:0], uint64(c.SeqNo), 10) {
			h.WriteByte(d)
		}
	}
	for _, hdr := range req.Headers() {
		switch r := hdr.(type) {
		case *sip.RouteHeader:
			h.WriteString("<")
			r.Address.StringWrite(h)
			h.WriteString(">")
		default:
			if n := hdr.Name(); len(n) == 5 && strings.EqualFold(n, "route") {
				h.WriteString(hdr.Value())
			}
		}
	}
	return strconv.FormatUint(uint64(*h), 36)
}

// fnvHash is hash/fnv's 64-bit FNV-1a as an io.StringWriter, so what
// sipgo writes is hashed without a string or []byte copy.
type fnvHash uint64

func newFNV() *fnvHash {
	h := fnvHash(14695981039346656037)
	return &h
}

func (h *fnvHash) WriteString(s string) (int, error) {
	v := *h
	for i := 0; i < len(s); i++ {
		v ^= fnvHash(s[i])
		v *= 1099511628211
	}
	*h = v
	return len(s), nil
}

// WriteByte lets sipgo write numbers (ports, CSeq) without a string.
func (h *fnvHash) WriteByte(c byte) error {
	*h = (*h ^ fnvHash(c)) * 1099511628211
	return nil
}

// looped: one of the Vias is ours with the same request hash, so the
// request came back unchanged (a loop, not a spiral).
func (p *proxy) looped(req *sip.Request) bool {
	var lh string
	for _, h := range req.GetHeaders("Via") {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		b, _ := v.Params.Get("branch")
		if !strings.HasPrefix(b, branchPrefix) || !strings.EqualFold(v.Host, p.advHost) {
			continue
		}
		if lh == "" {
			lh = loopHash(req)
		}
		if rest := b[len(branchPrefix):]; strings.HasPrefix(rest, lh+".") {
			return true
		}
	}
	return false
}

// forwardCopy is the request to send on: a copy with Max-Forwards
// decremented (or set to 70), our own Routes and our proxy credentials
// removed, and received/rport on the previous hop's Via.
func (p *proxy) forwardCopy(req *sip.Request) *sip.Request {
	fwd := shareCopy(req)
	mf := sip.MaxForwardsHeader(70)
	if h := req.MaxForwards(); h != nil {
		mf = sip.MaxForwardsHeader(h.Val() - 1)
	}
	removeAll(fwd, "Max-Forwards")
	fwd.AppendHeader(&mf)
	if via := fwd.Via(); via != nil {
		// The one header edited in place: the copy gets its own.
		via = via.Clone()
		fwd.ReplaceHeader(via)
		host, port := hostOf(req.Source()), portOf(req.Source())
		if via.Params.Has("rport") && port != "" {
			via.Params.Add("rport", port)
			via.Params.Add("received", host)
		} else if host != "" && !strings.EqualFold(strings.Trim(via.Host, "[]"), host) {
			via.Params.Add("received", host)
		}
	}
	p.popRoutes(fwd)
	return fwd
}

// shareCopy is a copy of req (RFC 3261 §16.6 step 1) that shares req's
// header values and body: the proxy adds, removes and replaces whole
// headers on its copies and never edits a shared one in place (sipgo's
// rule too: a header taken from a message is cloned before a change), so
// deep copies per forwarded request — ~50 allocations for an INVITE, a
// tenth of a call's — bought nothing. Whoever must edit a header of the
// copy in place clones it first (forwardCopy's Via).
func shareCopy(req *sip.Request) *sip.Request {
	c := sip.NewRequest(req.Method, req.Recipient)
	c.SipVersion = req.SipVersion
	for _, h := range req.Headers() {
		c.AppendHeader(h)
	}
	c.SetBody(req.Body())
	c.SetTransport(req.Transport())
	c.SetSource(req.Source())
	// The destination only if one was set: computing it from the Route
	// or Request-URI (1.6 % of the CPU at 1,000 calls/s) was wasted, as
	// every copy sent is given its own (setTarget).
	c.SetDestination(req.MessageData.Destination())
	c.Laddr = req.Laddr
	return c
}

// popRoutes removes the Route entries at the top that name us (one, or
// two after a transport switch) and reports how many.
func (p *proxy) popRoutes(req *sip.Request) int {
	n := 0
	for _, h := range req.GetHeaders("Route") {
		r, ok := h.(*sip.RouteHeader)
		if !ok || !p.isUs(&r.Address) || !removeFirst(req, "Route") {
			return n
		}
		n++
	}
	return n
}

// headerList is what requests and responses share for header edits.
type headerList interface {
	Headers() []sip.Header
	RemoveHeader(string) bool
}

// removeFirst removes the first header of a name (any case). sipgo's
// RemoveHeader removes one header and matches the name exactly.
func removeFirst(m headerList, name string) bool {
	for _, h := range m.Headers() {
		if strings.EqualFold(h.Name(), name) {
			return m.RemoveHeader(h.Name())
		}
	}
	return false
}

// removeAll removes every header of a name (any case).
func removeAll(m headerList, name string) {
	for removeFirst(m, name) {
	}
}

// addVia prepends our Via with a branch carrying the loop hash.
func (p *proxy) addVia(fwd *sip.Request, lh, transport string) {
	// The branch in one string and both parameters in one slice: three
	// Vias a call (INVITE, ACK, BYE).
	var b strings.Builder
	b.Grow(len(branchPrefix) + len(lh) + 11)
	b.WriteString(branchPrefix)
	b.WriteString(lh)
	b.WriteByte('.')
	sip.RandStringBytesMask(&b, 10)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(transport),
		Host: p.advHost, Port: p.port(transport),
		Params: sip.HeaderParams{{K: "branch", V: b.String()}, {K: "rport"}}}
	fwd.PrependHeader(via)
}

// addRecordRoute prepends our Record-Route: one entry, or two (RFC 5658)
// when the call changes transport here.
func (p *proxy) addRecordRoute(fwd *sip.Request, inTransport, outTransport string) {
	rr := func(tp string) *sip.RecordRouteHeader {
		u := sip.Uri{Scheme: "sip", Host: p.advHost, Port: p.port(tp), UriParams: sip.NewParams()}
		u.UriParams.Add("transport", strings.ToLower(tp))
		u.UriParams.Add("lr", "")
		return &sip.RecordRouteHeader{Address: u}
	}
	if !strings.EqualFold(inTransport, outTransport) {
		fwd.PrependHeader(rr(inTransport))
	}
	fwd.PrependHeader(rr(outTransport))
}

// stripOurCredentials removes Proxy-Authorization for our realms: they
// were for us, not for the next hop.
func (p *proxy) stripOurCredentials(fwd *sip.Request) {
	hs := fwd.GetHeaders("Proxy-Authorization")
	if len(hs) == 0 {
		return
	}
	keep := make([]sip.Header, 0, len(hs))
	for _, h := range hs {
		if !p.servedDomain(strings.ToLower(digestParam(h.Value(), "realm"))) {
			keep = append(keep, h)
		}
	}
	removeAll(fwd, "Proxy-Authorization")
	for _, h := range keep {
		fwd.AppendHeader(h)
	}
}

// digestParam extracts one parameter of a Digest header value, cheaply.
func digestParam(v, key string) string {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if i := strings.IndexByte(part, ' '); i > 0 && strings.EqualFold(part[:i], "digest") {
			part = strings.TrimSpace(part[i+1:])
		}
		k, val, ok := strings.Cut(part, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return ""
}

// relay turns a response from downstream into the one we send upstream:
// our Via removed, everything else kept.
func relay(res *sip.Response, up *sip.Request, dest string) *sip.Response {
	out := sip.NewResponse(res.StatusCode, stripCRLF(res.Reason))
	out.SipVersion = "SIP/2.0"
	skipped := false
	for _, h := range res.Headers() {
		if !skipped && h.Name() == "Via" {
			skipped = true
			continue
		}
		out.AppendHeader(h) // shared: see shareCopy
	}
	// A digest retry toward the trunk raised the CSeq; the caller's is the one it knows.
	if cs, rcs := up.CSeq(), res.CSeq(); cs != nil && (rcs == nil || *rcs != *cs) {
		out.ReplaceHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: cs.MethodName})
	}
	out.SetBody(res.Body())
	out.SetTransport(up.Transport())
	out.SetDestination(dest)
	return out
}

// responseDest is where responses to up go (source address, Via port or
// rport), as sipgo computes it for its own responses; read, not taken from
// a whole 100 response built per forwarded request (issue 17).
func responseDest(up *sip.Request) string {
	return up.ResponseDestination()
}

// cancelFor builds the CANCEL of a forwarded INVITE (RFC 3261 §9.1): same
// Request-URI, top Via, Call-ID, From, To, CSeq number and Route.
func cancelFor(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	c.AppendHeader(inv.Via().Clone())
	for _, r := range inv.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(r))
	}
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	return c
}

// send starts a client transaction for a prepared request.
func (p *proxy) send(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	return p.s.Client.TransactionRequest(ctx, req, noBuild)
}

// setTarget points a request at dest over transport, leaving UDP from our listener.
func (p *proxy) setTarget(req *sip.Request, dest, transport string) {
	req.SetDestination(dest)
	req.SetTransport(strings.ToUpper(transport))
	if strings.EqualFold(transport, "udp") {
		req.Laddr = p.udpListener()
	} else {
		req.Laddr = sip.Addr{}
	}
}

func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 || strings.HasSuffix(addr, "]") {
		return ""
	}
	return addr[i+1:]
}
