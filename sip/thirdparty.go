package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"hotdesk/sip/media"
)

// Third-party call control (click-to-dial, RFC 3725): hotdesk calls the
// user's phone with the vendor's auto-answer indication, then the target,
// and joins the two with the SDP of RFC 3725 §4.1 Flow IV:
//
//	1 INVITE phone (no SDP)         2 200 offer1        3 ACK answer1 (black hole: c=0.0.0.0, inactive)
//	4 INVITE target (no SDP)        5 200 offer2
//	6 re-INVITE phone offer2'       7 200 answer2'      8 ACK phone    9 ACK target answer2'
//
// Flow IV and not Flow I: the phone's 200 is ACKed at once, so a target that
// rings for a minute does not make the phone give up on its unacknowledged
// 200 after 32 s (RFC 3725 §4.1, the timing problem of Flow I). hotdesk
// stays a B2BUA in both dialogs: a BYE from either side ends the other, and
// a re-INVITE with an offer (a phone's Hold/Resume) is relayed. No media
// passes through hotdesk.

// Call control states.
const (
	CallPhone     = "calling_phone"  // the user's phone is being called
	CallTarget    = "calling_target" // the phone answered; the target rings
	CallConnected = "connected"
	CallHeld      = "held" // both legs re-INVITEd inactive by Hold
	CallOver      = "ended"
)

// Errors of the call-control API.
var (
	ErrCallControlOff = errors.New("sip: call control needs the proxy")
	ErrCallRefused    = errors.New("sip: call refused by the call policy")
	ErrNoTarget       = errors.New("sip: no such number or user")
	ErrCallNotFound   = errors.New("sip: no such controlled call")
	ErrTooManyCalls   = errors.New("sip: too many controlled calls")
	ErrNotConnected   = errors.New("sip: the call is not connected")
	ErrNoTransfer     = errors.New("sip: the other party does not accept the transfer (REFER)")
)

// maxControlled bounds the controlled calls of one owner (a portal user).
const maxControlled = 4

// DialRequest asks for one click-to-dial call.
type DialRequest struct {
	// Owner is whoever controls the call (a user); HangUp and
	// Calls only see the owner's calls.
	Owner Owner
	// Phone is the binding of the phone to call first.
	Phone Binding
	// Caller is the credential owner whose call policy applies: the same
	// as a call dialled on that phone (a locked phone's device account may
	// reach only its authorized and emergency numbers).
	Caller Owner
	// CallerID is the user part the target sees (the user's number).
	CallerID string
	// Target is the dialled number or user.
	Target string
}

// ControlledCall is one click-to-dial call as the portal shows it.
type ControlledCall struct {
	ID      string    `json:"id"`
	Target  string    `json:"target"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Started time.Time `json:"started"`
}

// AutoAnswerHeaders are the headers that make a phone answer an INVITE by
// itself, chosen by its User-Agent. Each vendor's documentation:
//   - Yealink: "Alert-Info: info=alert-autoanswer" (also "answer-after=0",
//     "Auto Answer"), Yealink FAQ "Intercom Auto Answer"
//     (support.yealink.com/faq/faqInfo?id=546) and the T4/T5 Administrator
//     Guides, "Auto Answer" under Distinctive Ring Tones.
//   - Snom / Gigaset: "Call-Info: <uri>;answer-after=0" or
//     "Alert-Info: <uri>;info=alert-autoanswer" (Gigaset GPPPO FAQ
//     "Auto-answer call"; snom wiki answer_after_policy decides whether the
//     phone obeys).
//   - Polycom (Poly): "Alert-Info: <uri>;info=alert-autoanswer"; the phone
//     must map that value to its auto-answer ring class
//     (voIpProt.SIP.alertInfo.x.class), which the provisioning does not do
//     yet; not confirmed in a Poly document found here.
//   - Cisco (SPA/MPP 3PCC firmware): "Call-Info: <uri>;answer-after=0"; not
//     confirmed in a Cisco document found here.
//
// An unknown phone gets both forms; a phone that honours neither rings,
// and the user answers it by hand.
func AutoAnswerHeaders(userAgent, domain string) []sip.Header {
	alert := sip.NewHeader("Alert-Info", "<sip:"+domain+">;info=alert-autoanswer")
	callInfo := sip.NewHeader("Call-Info", "<sip:"+domain+">;answer-after=0")
	ua := strings.ToLower(userAgent)
	switch {
	case strings.Contains(ua, "polycom"), strings.Contains(ua, "poly"), strings.Contains(ua, "yealink"):
		return []sip.Header{alert}
	case strings.Contains(ua, "cisco"):
		return []sip.Header{callInfo}
	}
	return []sip.Header{alert, callInfo}
}

type ccMetrics struct {
	calls  *prometheus.CounterVec
	active prometheus.GaugeFunc
}

// thirdParty holds the controlled calls; its goroutines end with ctx.
type thirdParty struct {
	p   *proxy
	ctx context.Context
	m   ccMetrics

	mu    sync.Mutex
	calls map[string]*ccCall // by ID
	legs  map[string]*ccLeg  // by Call-ID
}

func newThirdParty(ctx context.Context, p *proxy, reg prometheus.Registerer) *thirdParty {
	tp := &thirdParty{p: p, ctx: ctx, calls: map[string]*ccCall{}, legs: map[string]*ccLeg{}}
	f := promauto.With(reg)
	tp.m = ccMetrics{
		calls: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_click_to_dial_total",
			Help: "Click-to-dial calls by outcome: connected, refused (policy), no_target, phone_failed, target_failed, hung_up (before connecting), error."},
			[]string{"result"}),
		active: f.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotdesk_sip_click_to_dial_active",
			Help: "Click-to-dial calls in progress or connected."}, func() float64 {
			tp.mu.Lock()
			defer tp.mu.Unlock()
			return float64(len(tp.calls))
		}),
	}
	return tp
}

// ccLeg is one of the two dialogs hotdesk holds as a UAC.
type ccLeg struct {
	c    *ccCall
	name string // "phone" or "target"
	sess *sipgo.DialogClientSession
	dest string
	tp   string
	// Our SDP origin toward this leg (RFC 3264 §8: one origin, rising versions).
	sessID  string
	version int
	// remote is the last description this leg sent us (its media address).
	remote []byte
}

type ccCall struct {
	tp      *thirdParty
	id      string
	owner   Owner
	req     DialRequest
	route   target
	trunk   TrunkConfig // the caller's trunk (ProxyConfig.Trunk or its site's)
	started time.Time
	cancel  context.CancelFunc
	ctx     context.Context

	mu     sync.Mutex // guards the fields below and serializes re-INVITE relays
	state  string
	reason string
	phone  *ccLeg
	callee *ccLeg
	cids   []string // Call-IDs of every leg sent, forgotten at the end
	ended  bool
	byeCh  chan *ccLeg // a BYE came from this leg
}

// Dial starts a click-to-dial call: the policy check and the target lookup
// happen now (a refused call is an error), the call itself in the
// background.
func (s *Server) Dial(ctx context.Context, r DialRequest) (ControlledCall, error) {
	tp := s.thirdParty()
	if tp == nil {
		return ControlledCall{}, ErrCallControlOff
	}
	return tp.dial(ctx, r)
}

// HangUp ends an owner's controlled call: CANCEL or BYE on both legs.
func (s *Server) HangUp(_ context.Context, owner Owner, id string) error {
	tp := s.thirdParty()
	if tp == nil {
		return ErrCallControlOff
	}
	tp.mu.Lock()
	c := tp.calls[id]
	tp.mu.Unlock()
	if c == nil || c.owner != owner {
		return ErrCallNotFound
	}
	c.mu.Lock()
	if c.reason == "" {
		c.reason = "hung up"
	}
	c.mu.Unlock()
	c.cancel()
	return nil
}

// Hold puts an owner's connected call on hold (on) or resumes it: each
// leg is re-INVITEd with the other's last description, inactive or
// sendrecv (RFC 3264 §8.4), since no media passes through hotdesk.
func (s *Server) Hold(_ context.Context, owner Owner, id string, on bool) error {
	tp := s.thirdParty()
	if tp == nil {
		return ErrCallControlOff
	}
	tp.mu.Lock()
	c := tp.calls[id]
	tp.mu.Unlock()
	if c == nil || c.owner != owner {
		return ErrCallNotFound
	}
	return c.hold(on)
}

func (c *ccCall) hold(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.state != CallConnected && c.state != CallHeld {
		return ErrNotConnected
	}
	dir, state := "sendrecv", CallConnected
	if on {
		dir, state = "inactive", CallHeld
	}
	for _, l := range []*ccLeg{c.phone, c.callee} {
		other := c.callee
		if l == c.callee {
			other = c.phone
		}
		ans, err := l.reinvite(c.ctx, withDirection(other.remote, dir))
		if err != nil {
			return fmt.Errorf("hold: %w", err)
		}
		l.remote = ans
	}
	c.state = state
	return nil
}

// Transfer hands the other party of an owner's connected call to target:
// a blind transfer with REFER (RFC 3515) in hotdesk's dialog with that
// party, when its answer lists REFER in Allow; once it accepts (2xx),
// both legs get BYE and it calls target itself, through the proxy under
// its own policy. target must also pass the policy of the user's phone.
func (s *Server) Transfer(ctx context.Context, owner Owner, id, target string) error {
	tp := s.thirdParty()
	if tp == nil {
		return ErrCallControlOff
	}
	tp.mu.Lock()
	c := tp.calls[id]
	tp.mu.Unlock()
	if c == nil || c.owner != owner {
		return ErrCallNotFound
	}
	return c.transfer(ctx, strings.TrimSpace(target))
}

func (c *ccCall) transfer(ctx context.Context, to string) error {
	p := c.tp.p
	if !validTarget(to) {
		return fmt.Errorf("%w: %q", ErrNoTarget, stripCRLF(to))
	}
	if p.policy != nil {
		d, err := p.policy.Authorize(ctx, c.req.Caller, to)
		if err != nil {
			return fmt.Errorf("transfer policy: %w", err)
		}
		if !d.Allow {
			reason := stripCRLF(d.Reason)
			if reason == "" {
				reason = "Forbidden"
			}
			return fmt.Errorf("%w: %s", ErrCallRefused, reason)
		}
	}
	if _, ok := p.resolve(ctx, to, c.trunk); !ok {
		return fmt.Errorf("%w: %q", ErrNoTarget, to)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.state != CallConnected && c.state != CallHeld {
		return ErrNotConnected
	}
	l := c.callee
	if !allows(l.sess.InviteResponse, sip.REFER) {
		return ErrNoTransfer
	}
	domain := domainOf(c.req.Phone.AOR, p.s.domains[0])
	req := l.request(sip.REFER)
	req.AppendHeader(sip.NewHeader("Refer-To", "<sip:"+to+"@"+domain+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<sip:"+c.req.CallerID+"@"+domain+">"))
	rctx, cancel := context.WithTimeout(ctx, 2*sip.Timer_B)
	defer cancel()
	res, err := l.sess.Do(rctx, req)
	if err != nil {
		return fmt.Errorf("transfer REFER: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("%w: %d %s", ErrNoTransfer, res.StatusCode, stripCRLF(res.Reason))
	}
	c.reason = "transferred to " + to
	c.cancel() // run returns and finish sends both BYEs
	return nil
}

// allows reports whether a response's Allow header lists method.
func allows(res *sip.Response, method sip.RequestMethod) bool {
	if res == nil {
		return false
	}
	for _, h := range res.GetHeaders("Allow") {
		for _, m := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(m), string(method)) {
				return true
			}
		}
	}
	return false
}

func validTarget(t string) bool {
	return t != "" && len(t) <= 64 && t[0] != '*' && t[0] != '#' && !strings.ContainsAny(t, "@:;<> \r\n\t\"")
}

// withDirection is media.WithDirection for a SIP body.
func withDirection(body []byte, dir string) []byte {
	return []byte(media.WithDirection(string(body), dir))
}

// ControlledCalls lists an owner's calls in progress, oldest first.
func (s *Server) ControlledCalls(owner Owner) []ControlledCall {
	tp := s.thirdParty()
	if tp == nil {
		return nil
	}
	tp.mu.Lock()
	var cs []*ccCall
	for _, c := range tp.calls {
		if c.owner == owner {
			cs = append(cs, c)
		}
	}
	tp.mu.Unlock()
	out := make([]ControlledCall, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.view())
	}
	slices.SortFunc(out, func(a, b ControlledCall) int { return a.Started.Compare(b.Started) })
	return out
}

func (s *Server) thirdParty() *thirdParty {
	p := s.proxy.Load()
	if p == nil {
		return nil
	}
	return p.tp
}

func (c *ccCall) view() ControlledCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ControlledCall{ID: c.id, Target: c.req.Target, State: c.state, Reason: c.reason, Started: c.started}
}

func (tp *thirdParty) dial(ctx context.Context, r DialRequest) (ControlledCall, error) {
	p := tp.p
	r.Target = strings.TrimSpace(r.Target)
	if !validTarget(r.Target) {
		tp.m.calls.WithLabelValues("no_target").Inc()
		return ControlledCall{}, fmt.Errorf("%w: %q", ErrNoTarget, stripCRLF(r.Target))
	}
	if p.policy != nil {
		d, err := p.policy.Authorize(ctx, r.Caller, r.Target)
		if err != nil {
			tp.m.calls.WithLabelValues("error").Inc()
			return ControlledCall{}, fmt.Errorf("click-to-dial policy: %w", err)
		}
		if !d.Allow {
			tp.m.calls.WithLabelValues("refused").Inc()
			if d.Locked {
				p.m.lockedDenials.Inc()
			}
			reason := stripCRLF(d.Reason)
			if reason == "" {
				reason = "Forbidden"
			}
			return ControlledCall{}, fmt.Errorf("%w: %s", ErrCallRefused, reason)
		}
	}
	trunk := p.trunkFor(ctx, r.Caller)
	t, ok := p.resolve(ctx, r.Target, trunk)
	if !ok {
		tp.m.calls.WithLabelValues("no_target").Inc()
		return ControlledCall{}, fmt.Errorf("%w: %q", ErrNoTarget, r.Target)
	}
	cctx, cancel := context.WithCancel(tp.ctx)
	c := &ccCall{tp: tp, id: newCallID(), owner: r.Owner, req: r, route: t, trunk: trunk, started: p.now(), ctx: cctx,
		cancel: cancel, state: CallPhone, byeCh: make(chan *ccLeg, 2)}
	tp.mu.Lock()
	n := 0
	for _, o := range tp.calls {
		if o.owner == r.Owner {
			n++
		}
	}
	if n >= maxControlled {
		tp.mu.Unlock()
		cancel()
		tp.m.calls.WithLabelValues("error").Inc()
		return ControlledCall{}, ErrTooManyCalls
	}
	tp.calls[c.id] = c
	tp.mu.Unlock()
	// The call's goroutine ends with HangUp, a BYE, a failure or ctx.
	go func() {
		defer cancel()
		c.run()
	}()
	return c.view(), nil
}

// run is the call's whole life: Flow IV, then waiting for a BYE or HangUp.
func (c *ccCall) run() {
	tp, p := c.tp, c.tp.p
	result := "error"
	defer func() {
		tp.m.calls.WithLabelValues(result).Inc()
		c.finish()
	}()
	// 1-3: the user's phone, answered by itself (or by hand), then parked
	// on a black-hole answer.
	phone, offer1, err := c.invite("phone", c.phoneRequest(), sipgo.AnswerOptions{})
	if err != nil {
		result = c.failed("phone_failed", err)
		return
	}
	c.mu.Lock()
	c.phone = phone
	c.mu.Unlock()
	if err := phone.ack(blackHole(offer1)); err != nil {
		result = c.failed("phone_failed", err)
		return
	}
	c.setState(CallTarget)
	// 4-5: the target.
	req, auth, err := c.targetRequest()
	if err != nil {
		result = c.failed("target_failed", err)
		return
	}
	callee, offer2, err := c.invite("target", req, auth)
	if err != nil {
		result = c.failed("target_failed", err)
		return
	}
	c.mu.Lock()
	c.callee = callee
	c.mu.Unlock()
	if len(offer2) == 0 {
		callee.ack(nil)
		result = c.failed("target_failed", errors.New("the target's answer carries no SDP offer"))
		return
	}
	// 6-9: the phone gets the target's offer; the target gets its answer.
	c.mu.Lock()
	callee.remote = offer2
	answer2, err := phone.reinvite(c.ctx, offer2)
	phone.remote = answer2
	c.mu.Unlock()
	if err != nil {
		callee.ack(nil)
		result = c.failed("phone_failed", err)
		return
	}
	if err := callee.ack(answer2); err != nil {
		result = c.failed("target_failed", err)
		return
	}
	c.setState(CallConnected)
	result = "connected"
	p.log.Info("click-to-dial connected", "component", "callcontrol", "call", c.id, "target", c.req.Target)
	select {
	case <-c.ctx.Done():
	case from := <-c.byeCh:
		c.mu.Lock()
		c.reason = from.name + " hung up"
		c.mu.Unlock()
	}
}

// failed ends a call that did not connect and names why.
func (c *ccCall) failed(result string, err error) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		if c.reason == "" {
			c.reason = "hung up"
		}
		return "hung_up"
	}
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		c.reason = fmt.Sprintf("%d %s", de.Res.StatusCode, stripCRLF(de.Res.Reason))
	} else {
		c.reason = stripCRLF(err.Error())
	}
	if len(c.reason) > 120 {
		c.reason = c.reason[:120]
	}
	c.tp.p.log.Info("click-to-dial failed", "component", "callcontrol", "call", c.id, "result", result, "err", err)
	return result
}

func (c *ccCall) setState(s string) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

// finish hangs up what is still up and forgets the call.
func (c *ccCall) finish() {
	c.mu.Lock()
	c.ended, c.state = true, CallOver
	legs := []*ccLeg{c.phone, c.callee}
	cids := c.cids
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range legs {
		if l == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.bye(ctx)
		}()
	}
	wg.Wait()
	tp := c.tp
	tp.mu.Lock()
	delete(tp.calls, c.id)
	for _, id := range cids {
		delete(tp.legs, id)
	}
	tp.mu.Unlock()
}

// phoneRequest is step 1: no SDP, the auto-answer headers, From the
// target so the phone shows whom it is about to be connected to.
func (c *ccCall) phoneRequest() *sip.Request {
	p, b := c.tp.p, c.req.Phone
	var u sip.Uri
	_ = sip.ParseUri(b.Contact, &u) // the registrar stored a parsed contact
	domain := domainOf(b.AOR, p.s.domains[0])
	req := sip.NewRequest(sip.INVITE, u)
	req.AppendHeader(&sip.FromHeader{DisplayName: c.req.Target,
		Address: sip.Uri{Scheme: "sip", User: c.req.Target, Host: domain}, Params: ccTag()})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: userOfAOR(b.AOR), Host: domain}})
	for _, h := range AutoAnswerHeaders(b.UserAgent, domain) {
		req.AppendHeader(h)
	}
	tpt := b.Transport
	if tpt == "" {
		tpt = "UDP"
	}
	p.setTarget(req, b.Target(), tpt)
	if a, ok := splitAddr(b.Local); ok && strings.EqualFold(tpt, "udp") {
		req.Laddr = a
	}
	return req
}

// targetRequest is step 4: to a registered phone of the user dialled, or
// to the trunk with its credentials. Call handling (forwards, DND) is not
// applied to click-to-dial targets.
func (c *ccCall) targetRequest() (*sip.Request, sipgo.AnswerOptions, error) {
	p := c.tp.p
	domain := domainOf(c.req.Phone.AOR, p.s.domains[0])
	var u sip.Uri
	var dest, tpt string
	var auth sipgo.AnswerOptions
	var laddr sip.Addr
	if c.route.user != "" {
		bs := p.s.Lookup(c.ctx, "sip:"+c.route.user+"@"+domain)
		// Click-to-dial sends from this node; a binding only another node
		// reaches is left out.
		bs = slices.DeleteFunc(bs, func(b Binding) bool { return b.Contact == c.req.Phone.Contact || b.Handoff != "" })
		if len(bs) == 0 {
			return nil, auth, &sipgo.ErrDialogResponse{Res: &sip.Response{StatusCode: 480, Reason: "Temporarily Unavailable"}}
		}
		b := slices.MaxFunc(bs, func(a, b Binding) int { return a.Updated.Compare(b.Updated) })
		if err := sip.ParseUri(b.Contact, &u); err != nil {
			return nil, auth, fmt.Errorf("target contact: %w", err)
		}
		dest, tpt = b.Target(), b.Transport
		if a, ok := splitAddr(b.Local); ok && strings.EqualFold(tpt, "udp") {
			laddr = a
		}
	} else {
		tc := c.trunk
		host := tc.Domain
		if host == "" {
			host, _, _ = net.SplitHostPort(tc.Address)
		}
		u = sip.Uri{Scheme: "sip", User: c.route.number, Host: host}
		dest, tpt = tc.Address, tc.Transport
		auth = sipgo.AnswerOptions{Username: tc.Username, Password: tc.Password}
	}
	if tpt == "" {
		tpt = "UDP"
	}
	req := sip.NewRequest(sip.INVITE, u)
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: c.req.CallerID, Host: domain}, Params: ccTag()})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: c.req.Target, Host: u.Host}})
	p.setTarget(req, dest, tpt)
	if laddr.IP != nil && strings.EqualFold(tpt, "udp") {
		req.Laddr = laddr
	}
	return req, auth, nil
}

// invite sends an initial INVITE as a UAC and waits for its 2xx (the phone
// rings at most as long as Timer C allows; HangUp cancels it).
func (c *ccCall) invite(name string, req *sip.Request, auth sipgo.AnswerOptions) (*ccLeg, []byte, error) {
	p, tp := c.tp.p, c.tp
	cid := sip.CallIDHeader(newCallID())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	p.addVia(req, "cc"+c.id, req.Transport())
	req.AppendHeader(&sip.ContactHeader{Address: p.contactURI(req.Transport())})
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"))
	l := &ccLeg{c: c, name: name, dest: req.Destination(), tp: req.Transport(), sessID: strconv.FormatInt(p.now().UnixNano(), 10)}
	dua := &sipgo.DialogUA{Client: p.s.Client, ContactHDR: *req.Contact(), RewriteContact: true}
	ctx, cancel := context.WithTimeout(c.ctx, p.cfg.TimerC)
	defer cancel()
	sess, err := dua.WriteInvite(ctx, req, noBuild)
	if err != nil {
		return nil, nil, fmt.Errorf("%s INVITE: %w", name, err)
	}
	l.sess = sess
	c.mu.Lock()
	c.cids = append(c.cids, string(cid))
	c.mu.Unlock()
	tp.mu.Lock()
	tp.legs[string(cid)] = l
	tp.mu.Unlock()
	if err := sess.WaitAnswer(ctx, auth); err != nil {
		return nil, nil, err
	}
	return l, sess.InviteResponse.Body(), nil
}

// contactURI is where the phones send their in-dialog requests: us.
func (p *proxy) contactURI(transport string) sip.Uri {
	u := sip.Uri{Scheme: "sip", User: "hotdesk", Host: p.advHost, Port: p.port(transport), UriParams: sip.NewParams()}
	if !strings.EqualFold(transport, "udp") {
		u.UriParams.Add("transport", strings.ToLower(transport))
	}
	return u
}

// request builds a request in the leg's dialog, from our listener.
func (l *ccLeg) request(method sip.RequestMethod) *sip.Request {
	res := l.sess.InviteResponse
	u := l.sess.InviteRequest.Recipient
	if ct := res.Contact(); ct != nil {
		u = *ct.Address.Clone()
	}
	req := sip.NewRequest(method, u)
	p := l.c.tp.p
	p.setTarget(req, l.dest, l.tp)
	p.addVia(req, "cc"+l.c.id, l.tp)
	if src := res.Source(); src != "" {
		req.SetDestination(src)
	}
	if il := l.sess.InviteRequest.Laddr; il.IP != nil {
		req.Laddr = il
	}
	return req
}

// sdp puts our origin on a description sent to this leg.
func (l *ccLeg) sdp(body []byte) []byte {
	if body == nil {
		return nil
	}
	l.version++
	return withOrigin(body, l.sessID, l.version, l.c.tp.p.advHost)
}

// ack sends the ACK of the last INVITE (with an SDP answer when given).
func (l *ccLeg) ack(answer []byte) error {
	ack := l.request(sip.ACK)
	if answer != nil {
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(l.sdp(answer))
	}
	return l.sess.WriteAck(context.Background(), ack)
}

// reinvite offers a description to this leg and returns its answer,
// ACKing the 2xx. The caller holds c.mu.
func (l *ccLeg) reinvite(ctx context.Context, offer []byte) ([]byte, error) {
	req := l.request(sip.INVITE)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(l.sdp(offer))
	ctx, cancel := context.WithTimeout(ctx, 2*sip.Timer_B)
	defer cancel()
	res, err := l.sess.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s re-INVITE: %w", l.name, err)
	}
	if !res.IsSuccess() {
		return nil, &sipgo.ErrDialogResponse{Res: res}
	}
	ack := l.request(sip.ACK)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	if err := l.sess.WriteRequest(ack); err != nil {
		return nil, fmt.Errorf("%s re-INVITE ACK: %w", l.name, err)
	}
	if len(res.Body()) == 0 {
		return nil, fmt.Errorf("%s re-INVITE: answer without SDP", l.name)
	}
	return res.Body(), nil
}

func (l *ccLeg) bye(ctx context.Context) {
	if st := l.sess.LoadState(); st == sip.DialogStateEnded {
		return
	}
	if err := l.sess.WriteBye(ctx, l.request(sip.BYE)); err != nil {
		l.c.tp.p.log.Debug("click-to-dial BYE failed", "component", "callcontrol", "leg", l.name, "err", err)
	}
}

// handle takes the in-dialog requests of our own dialogs (reported true);
// everything else goes on to the proxy.
func (tp *thirdParty) handle(req *sip.Request, tx sip.ServerTransaction) bool {
	cid := req.CallID()
	if cid == nil {
		return false
	}
	tp.mu.Lock()
	l := tp.legs[cid.Value()]
	tp.mu.Unlock()
	if l == nil || l.sess == nil || tagOf(req.To().Params) != tagOf(l.sess.InviteRequest.From().Params) {
		return false
	}
	c, p := l.c, tp.p
	switch req.Method {
	case sip.ACK:
	case sip.BYE:
		l.sess.ReadBye(req, tx)
		select {
		case c.byeCh <- l:
		default:
		}
	case sip.INVITE:
		tp.relayReinvite(l, req, tx)
	case sip.INFO, sip.NOTIFY, sip.UPDATE, sip.OPTIONS:
		p.respond(req, tx, 200, "OK")
	default:
		// REFER (the phone's own transfer key) is not supported in this
		// dialog: the phone keeps the call.
		p.respond(req, tx, 501, "Not Implemented")
	}
	return true
}

// relayReinvite passes a leg's new offer (Hold, Resume) to the other leg
// and its answer back. A re-INVITE without SDP is answered 488: hotdesk
// has no description of its own to offer.
func (tp *thirdParty) relayReinvite(l *ccLeg, req *sip.Request, tx sip.ServerTransaction) {
	c, p := l.c, tp.p
	if len(req.Body()) == 0 {
		p.respond(req, tx, 488, "Not Acceptable Here")
		return
	}
	if !c.mu.TryLock() {
		p.respond(req, tx, 491, "Request Pending") // RFC 3261 §14.2: glare
		return
	}
	defer c.mu.Unlock()
	other := c.callee
	if l == c.callee {
		other = c.phone
	}
	if other == nil || c.state != CallConnected && c.state != CallHeld || c.ended {
		p.respond(req, tx, 491, "Request Pending")
		return
	}
	answer, err := other.reinvite(c.ctx, req.Body())
	if err != nil {
		p.log.Debug("click-to-dial re-INVITE relay failed", "component", "callcontrol", "err", err)
		p.respond(req, tx, 488, "Not Acceptable Here")
		return
	}
	l.remote, other.remote = req.Body(), answer
	res := p.reply(req, 200, "OK")
	res.AppendHeader(&sip.ContactHeader{Address: p.contactURI(l.tp)})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.SetBody(l.sdp(answer))
	tx.Respond(res)
}

// blackHole is answer1 of Flow IV: every offered stream accepted with its
// first format, inactive, at 0.0.0.0, so the phone sends no media yet.
func blackHole(offer []byte) []byte {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n")
	for _, line := range strings.Split(strings.ReplaceAll(string(offer), "\r\n", "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "m=") {
			continue
		}
		fmt.Fprintf(&b, "%s 9 %s %s\r\na=inactive\r\n", f[0], f[2], f[3])
	}
	return []byte(b.String())
}

// withOrigin replaces the o= line (RFC 4566 §5.2) with ours.
func withOrigin(body []byte, sessID string, version int, host string) []byte {
	addr := "IN IP4 " + host
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		addr = "IN IP6 " + host
	}
	lines := strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "o=") {
			lines[i] = fmt.Sprintf("o=hotdesk %s %d %s", sessID, version, addr)
			break
		}
	}
	return []byte(strings.Join(lines, "\r\n"))
}

func domainOf(aor, def string) string {
	if i := strings.LastIndexByte(aor, '@'); i >= 0 && i+1 < len(aor) {
		return aor[i+1:]
	}
	return def
}

func userOfAOR(aor string) string {
	s := strings.TrimPrefix(aor, "sip:")
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i]
	}
	return s
}

func ccTag() sip.HeaderParams {
	p := sip.NewParams()
	p.Add("tag", sip.GenerateTagN(10))
	return p
}
