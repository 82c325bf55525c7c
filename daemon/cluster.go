package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"hotdesk/prov"
	"hotdesk/prov/auth"
	"hotdesk/sip"
)

// clusterBus relays this node's changes to the other nodes sharing the
// PostgreSQL store, and theirs to this node's services. A
// message is a kind and IDs; receivers re-read the rows. NOTIFY keeps one
// sender's order, which the receivers rely on (a replaced session's end
// comes before the login that replaced it).
type clusterBus struct {
	cs     prov.ClusterStore
	node   string
	events *prov.Events
	sess   *prov.Sessions
	srv    *sip.Server
	logger *slog.Logger
	now    func() time.Time
	out    chan busMsg

	sent, received *prometheus.CounterVec
	failed         *prometheus.CounterVec
	lag            prometheus.Histogram
	resyncs        prometheus.Counter
	gate           *clusterGate
	// lockouts is the app's: filled before serving, read-only after.
	lockouts map[string]*auth.Lockout
}

// clusterGate is whether this node's view of the others is current: not
// from the start, nor while its event connection is lost, until the
// resync after it has run. Meanwhile the node refuses REGISTERs (503 with
// Retry-After: the phone registers with its next server) and logins, and
// /healthz fails: it may not know of a logout or a login on another node.
type clusterGate struct {
	ready  atomic.Bool
	synced chan struct{} // closed at the first resync
	once   sync.Once
	gauge  prometheus.Gauge
}

func newClusterGate(reg prometheus.Registerer) *clusterGate {
	return &clusterGate{synced: make(chan struct{}),
		gauge: promauto.With(reg).NewGauge(prometheus.GaugeOpts{Name: "hotdesk_store_events_ready",
			Help: "1 while this node's cluster events are connected and resynchronised; 0 while it refuses REGISTERs and logins."})}
}

// Ready reports whether the node may serve REGISTERs and logins.
func (g *clusterGate) Ready() bool { return g.ready.Load() }

func (g *clusterGate) set(ready bool) {
	g.ready.Store(ready)
	if ready {
		g.gauge.Set(1)
		g.once.Do(func() { close(g.synced) })
	} else {
		g.gauge.Set(0)
	}
}

// busMsg is one relayed change; field names are short, a NOTIFY payload
// is limited to 8000 bytes.
type busMsg struct {
	Node    string         `json:"n"`
	Kind    prov.EventKind `json:"k"`
	Device  int64          `json:"d,omitempty"`
	User    int64          `json:"u,omitempty"`
	Session string         `json:"s,omitempty"`
	Reason  string         `json:"r,omitempty"`
	Reboot  bool           `json:"b,omitempty"`
	AOR     string         `json:"a,omitempty"`
	Contact string         `json:"c,omitempty"`
	SentMS  int64          `json:"t"`
	// An authentication result (kindAuth): the username or lockout key,
	// the source, whether it failed, and for a prov lockout its name and
	// threshold.
	Name    string `json:"nm,omitempty"`
	Src     string `json:"ip,omitempty"`
	Failed  bool   `json:"f,omitempty"`
	Lockout string `json:"l,omitempty"`
	Thresh  int    `json:"th,omitempty"`
}

// kindBinding: a node took a binding (a phone registered there); any other
// node holding it lets it go.
const kindBinding prov.EventKind = "binding_changed"

// kindAuth: an authentication failed (or a success cleared failures) on
// a node; the others spend the same lockout budgets, so a guesser gains
// nothing by spreading its attempts over the nodes.
const kindAuth prov.EventKind = "auth_result"

// relayed reports the prov events other nodes must see.
func relayed(k prov.EventKind) bool {
	switch k {
	case prov.EventSessionStarted, prov.EventSessionEnded, prov.EventCredentialsChanged, prov.EventUserChanged,
		prov.EventDeviceChanged, prov.EventDeviceStatus, prov.EventSiteChanged, prov.EventUploadStored,
		prov.EventSoftphoneChanged:
		return true
	}
	return false
}

func newClusterBus(cs prov.ClusterStore, node string, a *app) *clusterBus {
	f := promauto.With(a.reg)
	if a.lockouts == nil {
		a.lockouts = map[string]*auth.Lockout{}
	}
	b := &clusterBus{cs: cs, node: node, lockouts: a.lockouts, events: a.svc.events, sess: a.svc.sessions, srv: a.svc.sip, gate: a.gate,
		logger: a.logger.With("component", "cluster"), now: time.Now, out: make(chan busMsg, 4096),
		sent: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_store_events_sent_total",
			Help: "Changes this node relayed to the other nodes over the store, by kind."}, []string{"kind"}),
		received: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_store_events_received_total",
			Help: "Changes received from other nodes over the store, by kind."}, []string{"kind"}),
		failed: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_store_events_failed_total",
			Help: "Relayed changes not sent (send) or not applied (apply, bad); heartbeats not written (heartbeat)."}, []string{"stage"}),
		lag: f.NewHistogram(prometheus.HistogramOpts{Name: "hotdesk_store_events_lag_seconds",
			Help:    "Time from a change on another node to its message arriving here (node clocks must agree).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}}),
		resyncs: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_store_events_resyncs_total",
			Help: "Resynchronisations from the tables after the event connection (re)connected."}),
	}
	b.events.Subscribe(b.onLocal)
	return b
}

// onLocal queues a local change for the other nodes, in order. A full
// queue waits: a change other nodes never hear of would leave them wrong.
func (b *clusterBus) onLocal(ctx context.Context, ev prov.Event) {
	if ev.Remote || !relayed(ev.Kind) {
		return
	}
	b.queue(ctx, busMsg{Kind: ev.Kind, Device: ev.DeviceID, User: ev.UserID, Session: ev.SessionID,
		Reason: ev.Reason, Reboot: ev.Reboot})
}

// bindingTaken relays a new binding on this node.
func (b *clusterBus) bindingTaken(bd sip.Binding) {
	b.queue(context.Background(), busMsg{Kind: kindBinding, AOR: bd.AOR, Contact: bd.Contact})
}

// sipAuthResult relays a SIP digest result (sip.Deps.AuthRelay). It never
// waits: it runs on the SIP path, and a guessing storm that fills the
// queue loses only the copies, counted as failed sends.
func (b *clusterBus) sipAuthResult(username, srcIP string, failed bool) {
	b.tryQueue(busMsg{Kind: kindAuth, Name: username, Src: srcIP, Failed: failed})
}

func (b *clusterBus) tryQueue(m busMsg) {
	m.Node, m.SentMS = b.node, b.now().UnixMilli()
	select {
	case b.out <- m:
	default:
		b.failed.WithLabelValues("send").Inc()
	}
}

func (b *clusterBus) queue(ctx context.Context, m busMsg) {
	m.Node, m.SentMS = b.node, b.now().UnixMilli()
	select {
	case b.out <- m:
	case <-ctx.Done():
		b.failed.WithLabelValues("send").Inc()
	}
}

// serve sends queued changes and applies the other nodes' until ctx ends.
func (b *clusterBus) serve(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.sendLoop(ctx)
	}()
	err := b.cs.Listen(ctx, b.onPayload, b.resync, func(error) { b.gate.set(false) })
	<-done
	return err
}

func (b *clusterBus) sendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-b.out:
			p, _ := json.Marshal(m)
			// Retried briefly: a NOTIFY lost here is a change the other
			// nodes learn only at their next resync.
			var err error
			for attempt := range 3 {
				if err = b.cs.Notify(ctx, string(p)); err == nil || ctx.Err() != nil {
					break
				}
				time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
			}
			if err != nil {
				b.failed.WithLabelValues("send").Inc()
				b.logger.Error("change not relayed to the other nodes", "kind", m.Kind, "err", err)
				continue
			}
			b.sent.WithLabelValues(string(m.Kind)).Inc()
		}
	}
}

// onPayload applies another node's change, on the listener's goroutine so
// changes apply in the order they were sent.
func (b *clusterBus) onPayload(p string) {
	var m busMsg
	if err := json.Unmarshal([]byte(p), &m); err != nil || m.Kind == "" {
		b.failed.WithLabelValues("bad").Inc()
		b.logger.Warn("unreadable cluster message", "err", err)
		return
	}
	if m.Node == b.node {
		return // our own, already applied
	}
	b.received.WithLabelValues(string(m.Kind)).Inc()
	if m.SentMS > 0 {
		b.lag.Observe(max(0, b.now().Sub(time.UnixMilli(m.SentMS)).Seconds()))
	}
	ctx := context.Background()
	if m.Kind == kindAuth {
		b.authElsewhere(m)
		return
	}
	if m.Kind == kindBinding {
		b.srv.Release([]sip.BindingKey{{AOR: m.AOR, Contact: m.Contact}})
		return
	}
	// Caches (credentials, rendered files) follow first, so a phone told
	// below fetches fresh files; the work that happens once was done by
	// the sending node.
	b.events.Publish(ctx, prov.Event{Kind: m.Kind, DeviceID: m.Device, UserID: m.User, SessionID: m.Session,
		Reason: m.Reason, Reboot: m.Reboot, Remote: true})
	var err error
	switch m.Kind {
	case prov.EventSessionEnded:
		err = b.sess.EndedElsewhere(ctx, m.Session)
	case prov.EventSessionStarted:
		err = b.sess.StartedElsewhere(ctx, m.Session)
	}
	if err != nil {
		b.failed.WithLabelValues("apply").Inc()
		b.logger.Error("change from another node not applied", "kind", m.Kind, "from", m.Node, "err", err)
	}
}

// resync re-reads, after a (re)connection, what missed messages said.
func (b *clusterBus) resync(ctx context.Context) error {
	b.gate.set(false) // (already, unless this is the first)
	return b.resyncTables(ctx)
}

func (b *clusterBus) resyncTables(ctx context.Context) error {
	b.resyncs.Inc()
	// Any change may have been missed: every cache goes (a site change
	// without a site drops them all).
	b.events.Publish(ctx, prov.Event{Kind: prov.EventSiteChanged, Remote: true})
	held := b.srv.Bindings()
	bs := make([]prov.Binding, 0, len(held))
	for _, h := range held {
		bs = append(bs, provBinding(h))
	}
	return b.sess.ResyncCluster(ctx, bs, func() {
		b.gate.set(true)
		b.logger.Info("cluster events resynchronised; serving REGISTERs and logins")
	})
}

// clusterLocation is sip's view of the bindings other nodes hold.
type clusterLocation struct {
	cs   prov.ClusterStore
	node string
	now  func() time.Time
	log  *slog.Logger
}

func (c clusterLocation) Bindings(ctx context.Context, aor string) []sip.Binding {
	bs, err := c.cs.AORBindings(ctx, aor, c.now())
	if err != nil {
		c.log.Warn("shared location not read", "component", "cluster", "aor", aor, "err", err)
		return nil
	}
	var out []sip.Binding
	for _, b := range bs {
		if b.Holder != c.node {
			out = append(out, sipBinding(b))
		}
	}
	return out
}

// authElsewhere spends this node's lockout budgets for another node's
// authentication result.
func (b *clusterBus) authElsewhere(m busMsg) {
	if m.Lockout == "" {
		b.srv.AuthElsewhere(m.Name, m.Src, m.Failed)
		return
	}
	l := b.lockouts[m.Lockout]
	if l == nil {
		b.failed.WithLabelValues("apply").Inc()
		b.logger.Warn("authentication result for an unknown lockout", "lockout", m.Lockout, "from", m.Node)
		return
	}
	l.Elsewhere(m.Name, m.Thresh, b.now(), m.Failed)
}
