package sip

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// outcome is the final answer of one branch: a downstream response, or one
// we made for it (timeout, transport error, DND…) with synth set.
type outcome struct {
	res   *sip.Response
	synth bool
}

// branchEvent reports a branch's provisional response (res) or its end (out).
type branchEvent struct {
	b   *branch
	res *sip.Response
	out *outcome
}

// leg is the user whose phones ring now, with their call handling.
type leg struct {
	user string
	h    Handling
}

// target is where a dialled string leads: a hotdesk user or a trunk number.
type target struct {
	user   string
	number string
}

// resolve maps a dialled user part to a target (RFC 3261 §16.5): a user
// (any alias, via CanonicalUser), else trunk when it has an address;
// calls from the trunk are given none, and never go back out.
func (p *proxy) resolve(ctx context.Context, dialled string, trunk TrunkConfig) (target, bool) {
	if dialled == "" {
		return target{}, false
	}
	if canon, ok := p.s.creds.CanonicalUser(ctx, dialled); ok {
		return target{user: canon}, true
	}
	if trunk.Address == "" {
		return target{}, false
	}
	return target{number: dialled}, true
}

// trunkFor is the trunk caller's calls to numbers leave through: its
// site's when prov names one, else ProxyConfig.Trunk. Calls from the
// trunk itself never go back out.
func (p *proxy) trunkFor(ctx context.Context, caller Owner) TrunkConfig {
	if p.trunks == nil || caller.Kind == "" || caller.Kind == OwnerTrunk {
		return p.cfg.Trunk
	}
	t, ok := p.trunks.CallerTrunk(ctx, caller)
	if !ok || t.Address == "" {
		return p.cfg.Trunk
	}
	if t.Transport == "" {
		t.Transport = "udp"
	}
	t.Register = false
	p.sitePeers.Store(normHostPort(t.Address), true)
	return t
}

// call is one proxied INVITE (or out-of-dialog MESSAGE/REFER/INFO): the
// server transaction upstream and its branches downstream. Its loop runs
// in the sipgo handler goroutine, which must not return before the final
// answer; branches run in their own goroutines and outlive the loop.
type call struct {
	p        *proxy
	up       *sip.Request
	tx       sip.ServerTransaction
	tmpl     *sip.Request // the forward copy every branch starts from
	media    *bridged     // a browser's call anchored on the bridge (proxy_media.go)
	relay    *relayed     // a recorded call between phones anchored on the bridge
	caller   Owner        // whose policy every target is under
	trunk    TrunkConfig  // where numbers go: the caller's site trunk, else ProxyConfig.Trunk
	lh       string
	dest     string
	trying   *sip.Response // the INVITE's 100, until run sends it
	invite   bool
	ev       chan branchEvent
	done     chan struct{}
	canceled chan struct{}
	cancelMu sync.Once

	mu        sync.Mutex // guards the fields below, shared with branches
	answered  bool
	finalSent bool // a non-2xx final went up: later 2xx go statelessly
	rec       CallRecord

	// Owned by the loop.
	live     int
	branches []*branch
	results  []outcome
	leg      leg
	depth    int
	visited  []string // users rung, for loops through forwards (few: a slice)
	noAnswer *time.Timer
	vmTried  bool // the call went to a mailbox once already
	// handedOver: a request another node handed over (Handoff); that
	// node records and counts the call.
	handedOver bool
}

func newCall(p *proxy, up *sip.Request, tx sip.ServerTransaction, tmpl *sip.Request, rec CallRecord) *call {
	c := &call{p: p, up: up, tx: tx, tmpl: tmpl, lh: loopHash(up), invite: up.IsInvite(),
		ev: make(chan branchEvent, 16), done: make(chan struct{}), canceled: make(chan struct{}),
		rec: rec, caller: rec.Caller}
	if c.invite {
		// The 100 we send anyway tells where responses go (one response
		// built per call instead of two).
		c.trying = p.reply(up, 100, "Trying")
		c.dest = c.trying.Destination()
	} else {
		c.dest = responseDest(up)
	}
	return c
}

// run routes the call and waits for its final answer.
func (c *call) run(ctx context.Context, dialled string) {
	defer close(c.done)
	fromTrunk := c.rec.Caller.Kind == OwnerTrunk
	out := c.trunk
	if fromTrunk {
		out = TrunkConfig{}
	}
	t, ok := c.p.resolve(ctx, dialled, out)
	if !ok {
		c.p.reject(c.up, c.tx, c.rec, c.invite, 404, "Not Found")
		return
	}
	c.begin()
	c.mu.Lock()
	switch {
	case t.user == "":
		c.rec.Route, c.rec.Callee = RouteTrunk, t.number
	case fromTrunk:
		c.rec.Route, c.rec.Callee = RouteInbound, t.user
	default:
		c.rec.Route, c.rec.Callee = RouteInternal, t.user
	}
	rec := c.rec
	c.mu.Unlock()
	if c.invite {
		rec.Stage = CallStarted
		c.p.records.push(rec)
	}
	if out := c.start(ctx, t); out != nil {
		c.results = append(c.results, *out)
	}
	c.loop(ctx)
	c.closeUnanswered()
	// Branch hooks keep the call reachable until sipgo's Timers L/M fire
	// (32 s, even after Terminate): drop what only the loop needed.
	c.tmpl, c.results = nil, nil
}

// begin answers 100 Trying and watches for the caller's CANCEL.
func (c *call) begin() {
	if c.invite {
		c.tx.Respond(c.trying)
		c.trying = nil
		if !c.tx.OnCancel(func(*sip.Request) { c.cancelMu.Do(func() { close(c.canceled) }) }) {
			c.cancelMu.Do(func() { close(c.canceled) })
		}
	}
}

// runVoicemail connects a code to the voicemail server — "listen" to the
// caller's own mailbox, "park" to a park slot — and waits for the final
// answer; callee is what the call record names.
func (c *call) runVoicemail(ctx context.Context, route, kind, target, callee string) {
	c.runCode(ctx, route, callee, func() bool { return c.forkVoicemail(kind, target) })
}

// runCode runs a code's call: send sends its one branch.
func (c *call) runCode(ctx context.Context, route, callee string, send func() bool) {
	defer close(c.done)
	c.begin()
	c.mu.Lock()
	c.rec.Route, c.rec.Callee = route, callee
	if route == RouteMailbox {
		c.rec.Dialled = redact(c.rec.Dialled)
	}
	rec := c.rec
	c.mu.Unlock()
	if !c.handedOver {
		rec.Stage = CallStarted
		c.p.records.push(rec)
	}
	c.vmTried = true
	if !send() {
		c.results = append(c.results, *c.synth(503, "Service Unavailable"))
	}
	c.loop(ctx)
	c.tmpl, c.results = nil, nil
}

// parkEntity is what call records and BLF watchers name a park slot.
func parkEntity(slot string) string { return "park:" + slot }

// forkVoicemail sends a branch to the voicemail server: kind "deposit"
// (record a message for mailbox), "listen" or "park".
func (c *call) forkVoicemail(kind, mailbox string) bool {
	host, port, err := sip.ParseAddr(c.p.vmAddr)
	if err != nil {
		c.p.log.Warn("voicemail address", "addr", c.p.vmAddr, "err", err)
		return false
	}
	c.p.m.voicemail.WithLabelValues(kind).Inc()
	u := sip.Uri{Scheme: "sip", User: kind + "." + mailbox, Host: host, Port: port}
	return c.fork(u, c.p.vmAddr, "UDP", sip.Addr{}, Owner{}, false, "")
}

// toVoicemail sends the call to the current user's mailbox once, when
// their handling has voicemail on: what no forward took.
func (c *call) toVoicemail() bool {
	if c.vmTried || !c.invite || c.p.mailboxes == nil || c.leg.user == "" || !c.leg.h.Voicemail ||
		c.depth >= c.p.cfg.MaxRedirects {
		return false
	}
	c.vmTried = true
	c.stopNoAnswer()
	c.depth++
	c.results = nil
	c.mu.Lock()
	c.rec.ForwardedTo = "voicemail"
	c.mu.Unlock()
	return c.forkVoicemail("deposit", c.leg.user)
}

func (c *call) loop(ctx context.Context) {
	for {
		if c.live == 0 {
			if c.allDone(ctx) {
				return
			}
			continue
		}
		var noAnswer <-chan time.Time
		if c.noAnswer != nil {
			noAnswer = c.noAnswer.C
		}
		select {
		case e := <-c.ev:
			if c.event(e) {
				return
			}
		case <-c.canceled:
			c.callerCancelled()
			return
		case <-noAnswer:
			c.noAnswer = nil
			c.noAnswerFired(ctx)
		}
	}
}

// event handles one branch event; true means the call is over for the loop.
func (c *call) event(e branchEvent) bool {
	if e.out == nil {
		if c.invite && !e.b.abandoned.Load() && !c.isFinal() {
			res := relay(e.res, c.up, c.dest)
			c.stripSDP(e.b, res)
			c.tx.Respond(res)
		}
		return false
	}
	c.live--
	// A 2xx counts even from a branch we gave up on: the call is answered.
	if code := e.out.res.StatusCode; code >= 200 && code < 300 {
		c.cancelAll(e.b, true)
		c.stopNoAnswer()
		return true
	}
	if !e.b.abandoned.Load() {
		c.results = append(c.results, *e.out)
	}
	return false
}

func (c *call) isFinal() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered || c.finalSent
}

// allDone runs when no branch is left: recurse on 3xx, forward on busy or
// no answer, or send the best answer. true means the call is over.
func (c *call) allDone(ctx context.Context) bool {
	best := c.best()
	if best == nil {
		c.sendFinal(*c.synth(480, "Temporarily Unavailable"))
		return true
	}
	code := best.res.StatusCode
	if c.invite {
		if code >= 300 && code < 400 && c.redirect(ctx, best.res) {
			return false
		}
		if next := c.forwardTarget(code); next != "" && c.forward(ctx, next) {
			return false
		}
		if c.forwardTarget(code) == "" && voicemailCode(code) && c.toVoicemail() {
			return false
		}
	}
	c.sendFinal(*best)
	return true
}

// forwardTarget is the call-handling forward for a final answer of the
// current user's phones.
func (c *call) forwardTarget(code int) string {
	if c.leg.user == "" {
		return ""
	}
	switch code {
	case 486, 600, 603:
		return c.leg.h.ForwardBusy
	case 404, 408, 480:
		return c.leg.h.ForwardNoAnswer
	}
	return ""
}

// voicemailCode says a final answer of the user's phones sends the call
// to their mailbox: busy or declined, not answered, not reachable.
func voicemailCode(code int) bool {
	switch code {
	case 486, 600, 603, 404, 408, 480:
		return true
	}
	return false
}

// forward starts a new generation of branches at to; false when the
// redirect budget is spent or to leads nowhere (the caller then gets the
// answers so far).
func (c *call) forward(ctx context.Context, to string) bool {
	if c.depth >= c.p.cfg.MaxRedirects {
		return false
	}
	if !c.permits(ctx, to, "forward") {
		return false
	}
	t, ok := c.p.resolve(ctx, to, c.trunk)
	if !ok {
		return false
	}
	c.depth++
	c.results = nil
	c.mu.Lock()
	c.rec.ForwardedTo = to
	c.mu.Unlock()
	if out := c.start(ctx, t); out != nil {
		c.results = append(c.results, *out)
	}
	return true
}

// redirect recurses on the Contacts of a 3xx (RFC 3261 §16.5): each
// contact's user part is routed like a dialled number, never to a host
// the redirect names, so a 3xx cannot make us an open relay.
func (c *call) redirect(ctx context.Context, res *sip.Response) bool {
	if c.depth >= c.p.cfg.MaxRedirects {
		return false
	}
	var ts []target
	for _, h := range res.GetHeaders("Contact") {
		ch, ok := h.(*sip.ContactHeader)
		if !ok || len(ts) >= 4 {
			continue
		}
		to := dialledUser(&ch.Address)
		if !c.permits(ctx, to, "redirect") {
			continue
		}
		if t, ok := c.p.resolve(ctx, to, c.trunk); ok {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return false
	}
	c.depth++
	c.results = nil
	for _, t := range ts {
		if out := c.start(ctx, t); out != nil {
			c.results = append(c.results, *out)
		}
	}
	return true
}

// start rings a target: the user's phones (after call handling) and
// twin, or the trunk. A non-nil outcome is an immediate answer.
func (c *call) start(ctx context.Context, t target) *outcome {
	if t.user == "" {
		c.leg = leg{}
		if !c.forkTrunk(t.number) {
			return c.synth(503, "Service Unavailable")
		}
		return nil
	}
	if slices.Contains(c.visited, t.user) {
		return c.synth(482, "Loop Detected")
	}
	c.visited = append(c.visited, t.user)
	h := c.handlingOf(ctx, t.user)
	c.leg = leg{user: t.user, h: h}
	if h.ForwardAlways != "" && c.forward(ctx, h.ForwardAlways) {
		return nil
	}
	if h.DND {
		if h.ForwardBusy != "" && c.forward(ctx, h.ForwardBusy) {
			return nil
		}
		if h.ForwardBusy == "" && c.toVoicemail() {
			return nil
		}
		return c.synth(486, "Do Not Disturb")
	}
	n := 0
	for _, b := range c.p.s.Lookup(ctx, t.user) {
		if len(c.branches) >= c.p.cfg.MaxBranches {
			break
		}
		if c.forkBinding(b) {
			n++
		}
	}
	if h.Twin != "" && c.permits(ctx, h.Twin, "twin") && c.forkTrunk(h.Twin) {
		n++
	}
	if n == 0 {
		if h.ForwardNoAnswer != "" && c.forward(ctx, h.ForwardNoAnswer) {
			return nil
		}
		if h.ForwardNoAnswer == "" && c.toVoicemail() {
			return nil
		}
		return c.synth(480, "Temporarily Unavailable")
	}
	if h.NoAnswerAfter > 0 && (h.ForwardNoAnswer != "" || h.Voicemail && c.p.mailboxes != nil) {
		c.stopNoAnswer()
		c.noAnswer = time.NewTimer(h.NoAnswerAfter)
	}
	return nil
}

// permits asks the caller's policy about a target the call reaches
// without the caller dialling it (a 3xx Contact, a forward, a twin), so a
// locked phone cannot reach through an authorized number what it may not
// dial itself. Calls from the trunk are not the policy's.
func (c *call) permits(ctx context.Context, to, via string) bool {
	p := c.p
	if p.policy == nil || c.caller.Kind == OwnerTrunk {
		return true
	}
	d, err := p.policy.Authorize(ctx, c.caller, to)
	if err != nil {
		p.log.Warn("call policy failed", "err", err)
		return false
	}
	if !d.Allow {
		p.m.relayRefused.WithLabelValues("policy").Inc()
		p.log.Info("call target outside the caller's policy not rung", "via", via, "target", stripCRLF(to),
			"caller_kind", string(c.caller.Kind), "caller", c.caller.ID)
		return false
	}
	return true
}

func (c *call) handlingOf(ctx context.Context, user string) Handling {
	if !c.invite || c.p.handling == nil {
		return Handling{}
	}
	h, err := c.p.handling.CallHandling(ctx, user)
	if err != nil {
		c.p.log.Warn("call handling lookup failed", "err", err)
		return Handling{}
	}
	return h
}

func (c *call) stopNoAnswer() {
	if c.noAnswer != nil {
		c.noAnswer.Stop()
		c.noAnswer = nil
	}
}

// noAnswerFired cancels the ringing phones and forwards the call.
func (c *call) noAnswerFired(ctx context.Context) {
	to := c.leg.h.ForwardNoAnswer
	if c.depth >= c.p.cfg.MaxRedirects {
		return
	}
	if to == "" {
		if c.leg.h.Voicemail && c.p.mailboxes != nil && !c.vmTried {
			c.cancelAll(nil, true)
			if !c.toVoicemail() {
				c.results = append(c.results, *c.synth(480, "Temporarily Unavailable"))
			}
		}
		return
	}
	c.cancelAll(nil, true)
	if !c.forward(ctx, to) {
		c.results = append(c.results, *c.synth(480, "Temporarily Unavailable"))
	}
}

func (c *call) synth(code int, reason string) *outcome {
	return &outcome{res: c.p.reply(c.up, code, reason), synth: true}
}

// cancelAll cancels every branch but except; abandon makes their final
// answers not count (the call moved on to a forward target).
func (c *call) cancelAll(except *branch, abandon bool) {
	for _, b := range c.branches {
		if b == except {
			continue
		}
		if abandon {
			b.abandoned.Store(true)
		}
		b.cancel()
	}
}

// callerCancelled: the transaction layer already answered the CANCEL (200)
// and the INVITE (487); cancel the branches and close the record.
func (c *call) callerCancelled() {
	c.mu.Lock()
	c.finalSent = true
	rec := c.rec
	c.mu.Unlock()
	c.stopNoAnswer()
	c.cancelAll(nil, true)
	c.p.finishRecord(rec, 487, "Request Terminated")
	c.p.m.calls.WithLabelValues(rec.Route, "cancelled").Inc()
}

// best picks the answer to send (RFC 3261 §16.7 step 6): any 6xx, else
// the lowest class, busy before other 4xx, and 503 sent as 500.
func (c *call) best() *outcome {
	var best *outcome
	for i := range c.results {
		o := &c.results[i]
		if best == nil || rank(o.res.StatusCode) < rank(best.res.StatusCode) {
			best = o
		}
	}
	if best == nil {
		return nil
	}
	if code := best.res.StatusCode; code == 401 || code == 407 {
		out := *best
		out.res = best.res.Clone()
		for _, o := range c.results {
			if o.res == best.res {
				continue
			}
			for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
				for _, h := range o.res.GetHeaders(name) {
					out.res.AppendHeader(sip.HeaderClone(h))
				}
			}
		}
		return &out
	}
	if best.res.StatusCode == 503 {
		return c.synth(500, "Server Internal Error")
	}
	return best
}

func rank(code int) int {
	switch {
	case code >= 600:
		return 0
	case code >= 300 && code < 400:
		return 1
	case code == 486:
		return 2
	case code == 401 || code == 407:
		return 3
	case code == 487:
		return 7
	case code == 408 || code == 480:
		return 6
	case code >= 400 && code < 500:
		return 4
	}
	return 8
}

// sendFinal sends a non-2xx final answer upstream and ends the record.
func (c *call) sendFinal(o outcome) {
	c.mu.Lock()
	if c.answered || c.finalSent {
		c.mu.Unlock()
		return
	}
	c.finalSent = true
	rec := c.rec
	c.mu.Unlock()
	res := o.res
	if !o.synth {
		res = relay(o.res, c.up, c.dest)
	}
	if c.invite && !c.handedOver {
		c.p.finishRecord(rec, res.StatusCode, res.Reason)
		c.p.m.calls.WithLabelValues(rec.Route, resultLabel(res.StatusCode)).Inc()
	}
	if err := c.tx.Respond(res); err != nil {
		c.p.log.Debug("sending the final answer failed", "err", err)
	}
}

// forward2xx passes a 2xx up — every 2xx, from any branch, even after the
// call ended upstream (RFC 3261 §16.7 step 5) — and sets up the dialog.
func (c *call) forward2xx(b *branch, res *sip.Response) {
	out := relay(res, c.up, c.dest)
	c.answer2xx(b, res, out)
	c.mu.Lock()
	first := !c.answered
	c.answered = true
	stateless := c.finalSent
	var rec CallRecord
	if first {
		c.rec.Stage, c.rec.Answer, c.rec.CalleeOwner = CallAnswered, c.p.now(), b.owner
		c.rec.Result, c.rec.Reason = res.StatusCode, stripCRLF(res.Reason)
		rec = c.rec
	}
	c.mu.Unlock()
	if c.invite {
		if first && !c.handedOver {
			// Counted before the 2xx goes up, so whoever sees the answer
			// also sees the metric.
			c.p.m.calls.WithLabelValues(rec.Route, "answered").Inc()
		}
		c.addDialog(b, res, rec, first)
	}
	if !stateless {
		select {
		case <-c.tx.Done():
			stateless = true
		default:
		}
	}
	if !stateless && c.tx.Respond(out) == nil {
		return
	}
	if err := c.p.s.UA.TransportLayer().WriteMsg(out); err != nil {
		c.p.log.Debug("forwarding a 2xx failed", "err", err)
	}
}

// addDialog records an answered branch so in-dialog requests find both
// parties; a retransmitted 2xx finds it there already.
func (c *call) addDialog(b *branch, res *sip.Response, rec CallRecord, first bool) {
	key := dialogKey(c.up.CallID().Value(), tagOf(c.up.From().Params), tagOf(res.To().Params))
	if c.p.dialogs.get(key) != nil {
		return
	}
	b.mu.Lock()
	req := b.req
	b.mu.Unlock()
	d := &dialog{key: key, callerTag: tagOf(c.up.From().Params), created: c.p.now(), upDest: c.dest,
		inviteKey: answeredKey(c.up),
		caller:    side{addr: c.up.Source(), transport: c.up.Transport()},
		callee: side{addr: req.Destination(), transport: req.Transport(), laddr: req.Laddr,
			cseqDelta: req.CSeq().SeqNo - c.up.CSeq().SeqNo},
		media: c.mediaOf(b)}
	if c.media != nil {
		d.callerMedia = c.media.s
	}
	if c.relay != nil {
		d.relay = c.relay.r
	}
	if b.media != nil {
		d.calleeMedia = b.media.s
	}
	if strings.EqualFold(d.caller.transport, "udp") {
		d.caller.laddr = c.p.udpListener()
	}
	if first && !c.handedOver {
		d.rec = rec
		c.p.records.push(rec)
	}
	b.mu.Lock()
	// The branch's client transaction first: once the caller's server
	// transaction ends, max_calls (and its gauge) count the call gone, so
	// a 2xx retransmitted after that must find no transaction and go to
	// strayResponse (sipgo removes a transaction synchronously).
	d.txs = []interface{ Terminate() }{b.tx, c.tx}
	b.mu.Unlock()
	c.p.dialogs.put(d)
}

// post hands an event to the loop, or drops it once the loop is over.
func (c *call) post(e branchEvent) {
	select {
	case c.ev <- e:
	case <-c.done:
	}
}
