package sip

import (
	"bytes"
	"context"
	"encoding/xml"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The dialog event package (RFC 4235) for busy lamp fields: a phone's BLF
// key SUBSCRIBEs with "Event: dialog" to a colleague's address; the
// registrar answers it and NOTIFYs the colleague's calls as the proxy sees
// them — early while ringing, confirmed when answered, terminated when
// over — from the call records (callrec.go). Only authenticated phones
// subscribe (proxy digest, as for a call); subscriptions are bounded in
// number, in total and per subscriber, and expire (RFC 6665 §4.1.2.1).
// Other event packages (a multicast ua-profile SUBSCRIBE, in-dialog
// SUBSCRIBEs of phone-to-phone dialogs) are not ours: the proxy's
// dispatch looks at the Event header first.

const (
	// dialogEventPackage is the Event header value we serve.
	dialogEventPackage = "dialog"
	dialogInfoType     = "application/dialog-info+xml"
	// Subscription lifetimes: a shorter one is refused with 423 and
	// Min-Expires, a longer one is shortened.
	dialogMinExpires     = 60
	dialogMaxExpires     = 3600
	dialogDefaultExpires = 3600
	// maxDialogSubs bounds the subscriptions held, maxDialogSubsPerOwner
	// those of one credential (an attendant console watches many).
	maxDialogSubs         = 10000
	maxDialogSubsPerOwner = 200
	// maxWatchedDialogs bounds the calls remembered per watched user.
	maxWatchedDialogs = 16
	// notifyShards send NOTIFYs, each in order for its subscriptions; a
	// full shard drops (counted): the next NOTIFY carries the full state.
	notifyShards   = 4
	notifyQueueLen = 256
	notifyTimeout  = 5 * time.Second
)

// dialogSub is one accepted subscription (a dialog we are the notifier of).
type dialogSub struct {
	key      string // Call-ID and the subscriber's tag
	watched  string // canonical user watched
	entity   string // sip:<watched>@<domain>
	owner    Owner
	callID   string
	remote   sip.Uri // the subscriber's From
	remTag   string
	ourTag   string
	contact  sip.Uri // where NOTIFYs go (the subscriber's Contact)
	dest     string  // the address the SUBSCRIBE came from (NAT, TCP)
	trans    string
	cseq     uint32
	version  int
	expires  time.Time
	shard    int
	finished bool
}

// watchedDialog is one call of a watched user, as RFC 4235 describes it.
type watchedDialog struct {
	id        string // the call record's ID
	callID    string
	direction string // initiator (the user called) or recipient
	state     string // early, confirmed, terminated
	seen      time.Time
}

type notifyJob struct {
	sub *dialogSub
	req *sip.Request
	end bool // the last NOTIFY of the subscription
}

type dialogMetrics struct {
	subs      prometheus.Gauge
	subscribe *prometheus.CounterVec
	notify    *prometheus.CounterVec
}

// dialogEvents is the notifier.
type dialogEvents struct {
	p   *proxy
	log *slog.Logger
	m   dialogMetrics

	// active is len(subs), read without the lock on the call path: no
	// work at all while nobody watches.
	active atomic.Int64
	recs   chan CallRecord

	mu      sync.Mutex
	subs    map[string]*dialogSub
	byUser  map[string]map[string]*dialogSub
	byOwner map[Owner]int
	state   map[string][]*watchedDialog

	shards [notifyShards]chan notifyJob
}

func newDialogEvents(p *proxy, reg prometheus.Registerer, log *slog.Logger) *dialogEvents {
	f := promauto.With(reg)
	d := &dialogEvents{p: p, log: log.With("component", "sip-dialog-events"),
		recs: make(chan CallRecord, 1024),
		subs: map[string]*dialogSub{}, byUser: map[string]map[string]*dialogSub{}, byOwner: map[Owner]int{},
		state: map[string][]*watchedDialog{},
		m: dialogMetrics{
			subs: f.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_sip_dialog_subscriptions",
				Help: "Dialog event (BLF) subscriptions held."}),
			subscribe: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_dialog_subscribe_total",
				Help: "Dialog event SUBSCRIBEs by result."}, []string{"result"}),
			notify: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_dialog_notify_total",
				Help: "Dialog event NOTIFYs by result (sent, failed, dropped)."}, []string{"result"}),
		}}
	for i := range d.shards {
		d.shards[i] = make(chan notifyJob, notifyQueueLen)
	}
	for _, r := range []string{"accepted", "refreshed", "ended", "not_found", "too_brief", "full", "no_subscription"} {
		d.m.subscribe.WithLabelValues(r)
	}
	for _, r := range []string{"sent", "failed", "dropped"} {
		d.m.notify.WithLabelValues(r)
	}
	return d
}

// run works the call records and the senders until ctx ends, and expires
// subscriptions.
func (d *dialogEvents) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range d.shards {
		wg.Add(1)
		go func() { defer wg.Done(); d.send(ctx, d.shards[i]) }()
	}
	tick := time.NewTicker(10 * time.Second)
	defer func() { tick.Stop(); wg.Wait() }()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-d.recs:
			d.apply(ctx, r)
		case <-tick.C:
			d.expire(d.p.now())
		}
	}
}

// isDialogSubscribe reports a SUBSCRIBE for the dialog package that is
// ours: a new one, or a refresh of a subscription we hold.
func (d *dialogEvents) isDialogSubscribe(req *sip.Request) bool {
	if req.Method != sip.SUBSCRIBE {
		return false
	}
	ev := req.GetHeader("Event")
	if ev == nil {
		return false
	}
	pkg, _, _ := strings.Cut(ev.Value(), ";")
	if !strings.EqualFold(strings.TrimSpace(pkg), dialogEventPackage) {
		return false
	}
	if tagOf(req.To().Params) == "" {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.subs[subKey(req)]
	return s != nil && s.ourTag == tagOf(req.To().Params)
}

func subKey(req *sip.Request) string {
	return req.CallID().Value() + "|" + tagOf(req.From().Params)
}

// onSubscribe answers a dialog SUBSCRIBE: new, refresh or end (Expires: 0).
func (d *dialogEvents) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	ctx := context.Background()
	cred, res := d.p.proxyAuth(ctx, req)
	if res != nil {
		tx.Respond(res)
		return
	}
	expires := dialogDefaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			d.m.subscribe.WithLabelValues("bad").Inc()
			d.p.respond(req, tx, 400, "Bad Expires")
			return
		}
		expires = min(n, dialogMaxExpires)
	}
	if expires > 0 && expires < dialogMinExpires {
		d.m.subscribe.WithLabelValues("too_brief").Inc()
		r := d.p.reply(req, 423, "Interval Too Brief")
		r.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(dialogMinExpires)))
		tx.Respond(r)
		return
	}
	now := d.p.now()
	if tag := tagOf(req.To().Params); tag != "" {
		d.refresh(req, tx, cred.Owner, expires, now)
		return
	}
	watched, ok := d.p.s.creds.CanonicalUser(ctx, dialledUser(&req.Recipient))
	if !ok {
		d.m.subscribe.WithLabelValues("not_found").Inc()
		d.p.respond(req, tx, 404, "Not Found")
		return
	}
	contact := req.Contact()
	if contact == nil {
		d.m.subscribe.WithLabelValues("bad").Inc()
		d.p.respond(req, tx, 400, "Missing Contact")
		return
	}
	s := &dialogSub{key: subKey(req), watched: watched, entity: "sip:" + watched + "@" + d.p.s.domains[0],
		owner: cred.Owner, callID: req.CallID().Value(), remote: *req.From().Address.Clone(),
		remTag: tagOf(req.From().Params), ourTag: sip.GenerateTagN(16), contact: *contact.Address.Clone(),
		dest: req.Source(), trans: req.Transport(), expires: now.Add(time.Duration(expires) * time.Second)}
	h := fnv.New32a()
	h.Write([]byte(s.key))
	s.shard = int(h.Sum32() % notifyShards)
	d.mu.Lock()
	if _, dup := d.subs[s.key]; dup || len(d.subs) >= maxDialogSubs || d.byOwner[s.owner] >= maxDialogSubsPerOwner {
		d.mu.Unlock()
		d.m.subscribe.WithLabelValues("full").Inc()
		d.log.Warn("dialog subscription refused: too many", "owner", s.owner.String())
		d.p.respond(req, tx, 503, "Too Many Subscriptions")
		return
	}
	if expires > 0 {
		d.add(s)
	}
	job := d.notifyLocked(s, expires == 0, "timeout")
	d.mu.Unlock()
	ok200 := d.okResponse(req, s, expires)
	tx.Respond(ok200)
	if expires == 0 {
		d.m.subscribe.WithLabelValues("ended").Inc()
	} else {
		d.m.subscribe.WithLabelValues("accepted").Inc()
	}
	d.log.Debug("dialog subscription", "watched", watched, "owner", s.owner.ID, "expires", expires)
	d.queue(job)
}

func (d *dialogEvents) refresh(req *sip.Request, tx sip.ServerTransaction, owner Owner, expires int, now time.Time) {
	d.mu.Lock()
	s := d.subs[subKey(req)]
	if s == nil || s.ourTag != tagOf(req.To().Params) || s.owner != owner {
		d.mu.Unlock()
		d.m.subscribe.WithLabelValues("no_subscription").Inc()
		d.p.respond(req, tx, 481, "Subscription Does Not Exist")
		return
	}
	if expires == 0 {
		d.remove(s)
	} else {
		s.expires = now.Add(time.Duration(expires) * time.Second)
	}
	job := d.notifyLocked(s, expires == 0, "timeout")
	d.mu.Unlock()
	tx.Respond(d.okResponse(req, s, expires))
	if expires == 0 {
		d.m.subscribe.WithLabelValues("ended").Inc()
	} else {
		d.m.subscribe.WithLabelValues("refreshed").Inc()
	}
	d.queue(job)
}

func (d *dialogEvents) okResponse(req *sip.Request, s *dialogSub, expires int) *sip.Response {
	r := d.p.reply(req, 200, "OK")
	if to := r.To(); to != nil {
		// Ours, not the one sipgo makes up: the NOTIFYs' From carries it.
		to.Params.Remove("tag")
		to.Params.Add("tag", s.ourTag)
	}
	r.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	r.AppendHeader(&sip.ContactHeader{Address: d.ourContact(s.trans)})
	return r
}

func (d *dialogEvents) ourContact(transport string) sip.Uri {
	u := sip.Uri{Scheme: "sip", User: "hotdesk", Host: d.p.advHost, Port: d.p.port(transport)}
	if !strings.EqualFold(transport, "udp") {
		u.UriParams = sip.HeaderParams{{K: "transport", V: strings.ToLower(transport)}}
	}
	return u
}

// add and remove keep the indexes; callers hold mu.
func (d *dialogEvents) add(s *dialogSub) {
	d.subs[s.key] = s
	if d.byUser[s.watched] == nil {
		d.byUser[s.watched] = map[string]*dialogSub{}
	}
	d.byUser[s.watched][s.key] = s
	d.byOwner[s.owner]++
	d.active.Store(int64(len(d.subs)))
	d.m.subs.Set(float64(len(d.subs)))
}

func (d *dialogEvents) remove(s *dialogSub) {
	if d.subs[s.key] != s {
		return
	}
	delete(d.subs, s.key)
	delete(d.byUser[s.watched], s.key)
	if len(d.byUser[s.watched]) == 0 {
		delete(d.byUser, s.watched)
		delete(d.state, s.watched) // nobody watches: forget the calls
	}
	if d.byOwner[s.owner]--; d.byOwner[s.owner] <= 0 {
		delete(d.byOwner, s.owner)
	}
	s.finished = true
	d.active.Store(int64(len(d.subs)))
	d.m.subs.Set(float64(len(d.subs)))
}

// observe takes a call record from the proxy (never blocks the call).
func (d *dialogEvents) observe(r CallRecord) {
	if d.active.Load() == 0 {
		return
	}
	select {
	case d.recs <- r:
	default:
		d.m.notify.WithLabelValues("dropped").Inc()
	}
}

// apply turns a call record into dialog states of the users it concerns:
// the callee (a hotdesk user) and the caller (the From user, when a
// user's own line called), and NOTIFYs their watchers.
func (d *dialogEvents) apply(ctx context.Context, r CallRecord) {
	type party struct{ user, direction string }
	var parties []party
	if r.Route == RouteInternal || r.Route == RouteInbound {
		parties = append(parties, party{r.Callee, "recipient"})
	}
	if r.Caller.Kind == OwnerUser || r.Caller.Kind == OwnerSession {
		if u, ok := d.p.s.creds.CanonicalUser(ctx, r.From); ok && u != r.Callee {
			parties = append(parties, party{u, "initiator"})
		}
	}
	state := "early"
	switch {
	case r.Stage == CallAnswered:
		state = "confirmed"
	case r.Stage == CallEnded:
		state = "terminated"
	}
	now := d.p.now()
	var jobs []notifyJob
	d.mu.Lock()
	for _, pt := range parties {
		if pt.user == "" || len(d.byUser[pt.user]) == 0 {
			continue
		}
		ds := d.state[pt.user]
		var w *watchedDialog
		for _, x := range ds {
			if x.id == r.ID {
				w = x
			}
		}
		if w == nil {
			if state == "terminated" {
				continue // never told as started: nothing to end
			}
			w = &watchedDialog{id: r.ID, callID: r.CallID, direction: pt.direction}
			ds = append(ds, w)
			if len(ds) > maxWatchedDialogs {
				ds = ds[len(ds)-maxWatchedDialogs:]
			}
		}
		w.state, w.seen = state, now
		d.state[pt.user] = ds
		for _, s := range d.byUser[pt.user] {
			jobs = append(jobs, d.notifyLocked(s, false, ""))
		}
		// A terminated call is told once, then forgotten.
		kept := ds[:0]
		for _, x := range ds {
			if x.state != "terminated" {
				kept = append(kept, x)
			}
		}
		if len(kept) == 0 {
			delete(d.state, pt.user)
		} else {
			d.state[pt.user] = kept
		}
	}
	d.mu.Unlock()
	for _, j := range jobs {
		d.queue(j)
	}
}

// expire ends the subscriptions past their time with a last NOTIFY.
func (d *dialogEvents) expire(now time.Time) {
	var jobs []notifyJob
	d.mu.Lock()
	for _, s := range d.subs {
		if !now.Before(s.expires) {
			d.remove(s)
			jobs = append(jobs, d.notifyLocked(s, true, "timeout"))
			d.m.subscribe.WithLabelValues("expired").Inc()
		}
	}
	d.mu.Unlock()
	for _, j := range jobs {
		d.queue(j)
	}
}

func (d *dialogEvents) queue(j notifyJob) {
	select {
	case d.shards[j.sub.shard] <- j:
	default:
		d.m.notify.WithLabelValues("dropped").Inc()
	}
}

// notifyLocked builds the next NOTIFY of s (full state: every call of
// the watched user we know); callers hold mu, which orders CSeq and
// version with the queue.
func (d *dialogEvents) notifyLocked(s *dialogSub, end bool, reason string) notifyJob {
	s.cseq++
	s.version++
	var body bytes.Buffer
	body.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	body.WriteString(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="` + strconv.Itoa(s.version-1) +
		`" state="full" entity="` + xmlAttr(s.entity) + `">` + "\n")
	for _, w := range d.state[s.watched] {
		body.WriteString(`  <dialog id="` + xmlAttr(w.id) + `" call-id="` + xmlAttr(w.callID) + `" direction="` +
			w.direction + `"><state>` + w.state + "</state></dialog>\n")
	}
	body.WriteString("</dialog-info>\n")

	req := sip.NewRequest(sip.NOTIFY, *s.contact.Clone())
	transport := strings.ToUpper(s.trans)
	if transport == "" {
		transport = "UDP"
	}
	req.SetTransport(transport)
	req.SetDestination(s.dest)
	if transport == "UDP" {
		req.Laddr = d.p.udpListener()
	}
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: transport,
		Host: d.p.advHost, Port: d.p.port(transport), Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	var entity sip.Uri
	_ = sip.ParseUri(s.entity, &entity)
	from := &sip.FromHeader{Address: entity, Params: sip.NewParams()}
	from.Params.Add("tag", s.ourTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: s.remote, Params: sip.NewParams()}
	to.Params.Add("tag", s.remTag)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(s.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: s.cseq, MethodName: sip.NOTIFY})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.ContactHeader{Address: d.ourContact(transport)})
	req.AppendHeader(sip.NewHeader("Event", dialogEventPackage))
	if end {
		req.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason="+reason))
	} else {
		left := 0
		if n := d.p.now(); s.expires.After(n) {
			left = int(s.expires.Sub(n).Seconds())
		}
		req.AppendHeader(sip.NewHeader("Subscription-State", "active;expires="+strconv.Itoa(left)))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", dialogInfoType))
	req.SetBody(body.Bytes())
	return notifyJob{sub: s, req: req, end: end}
}

// send works one shard: each NOTIFY waits for its answer (in order); a
// 481 or no answer ends the subscription (RFC 6665 §4.1.3).
func (d *dialogEvents) send(ctx context.Context, ch chan notifyJob) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-ch:
			d.mu.Lock()
			gone := j.sub.finished && !j.end
			d.mu.Unlock()
			if gone {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, notifyTimeout)
			res, err := d.p.s.Client.Do(cctx, j.req)
			cancel()
			switch {
			case err == nil && res.IsSuccess():
				d.m.notify.WithLabelValues("sent").Inc()
				continue
			case err == nil:
				d.log.Debug("dialog NOTIFY refused", "watched", j.sub.watched, "code", res.StatusCode)
			default:
				d.log.Debug("dialog NOTIFY failed", "watched", j.sub.watched, "err", err)
			}
			d.m.notify.WithLabelValues("failed").Inc()
			if err != nil || res.StatusCode == 481 || res.StatusCode >= 500 {
				d.mu.Lock()
				d.remove(j.sub)
				d.mu.Unlock()
			}
		}
	}
}

func xmlAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), `"`, "&#34;")
}
