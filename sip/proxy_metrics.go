package sip

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type proxyMetrics struct {
	calls          *prometheus.CounterVec
	voicemail      *prometheus.CounterVec
	lockedDenials  prometheus.Counter
	dialogs        prometheus.GaugeFunc
	auth           *prometheus.CounterVec
	inDialog       *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	recordsDropped prometheus.Counter
	branches       prometheus.Counter
	trunkReg       *prometheus.CounterVec
	trunkUp        prometheus.Gauge
	relayRefused   *prometheus.CounterVec
	shed           *prometheus.CounterVec
	held           prometheus.GaugeFunc
	renegotiations *prometheus.CounterVec
	handoffs       *prometheus.CounterVec
	parkHandoffs   *prometheus.CounterVec
}

func newProxyMetrics(reg prometheus.Registerer, dialogs, held func() float64) *proxyMetrics {
	f := promauto.With(reg)
	return &proxyMetrics{
		trunkReg: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_trunk_registrations_total",
			Help: "REGISTERs hotdesk sent to the upstream trunk, by result."}, []string{"result"}),
		trunkUp: f.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_sip_proxy_trunk_registered",
			Help: "1 while hotdesk holds a registration with the upstream trunk."}),
		calls: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_calls_total",
			Help: "Call attempts (authenticated INVITEs) by route and result."}, []string{"route", "result"}),
		voicemail: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_voicemail_total",
			Help: "Calls sent to the voicemail server, by kind (deposit: unanswered, listen: the mailbox code, park: a park slot)."},
			[]string{"kind"}),
		lockedDenials: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_locked_denials_total",
			Help: "Calls from locked phones refused by the call policy."}),
		dialogs: f.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotdesk_sip_proxy_active_dialogs",
			Help: "Answered calls the proxy is keeping state for."}, dialogs),
		auth: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_auth_total",
			Help: "Proxy digest answers other than success, by result."}, []string{"result"}),
		inDialog: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_in_dialog_total",
			Help: "In-dialog requests relayed, by method."}, []string{"method"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_dropped_total",
			Help: "Requests the proxy dropped without an answer, by reason."}, []string{"reason"}),
		recordsDropped: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_records_dropped_total",
			Help: "Call records dropped because the recorder fell behind."}),
		relayRefused: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_relay_refused_total",
			Help: "Targets the proxy refused to send to: in-dialog requests without a dialog to an unknown host:port (unknown_peer), 3xx/forward targets outside the caller's policy (policy)."},
			[]string{"reason"}),
		shed: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_shed_total",
			Help: "New INVITEs answered 503 with Retry-After because max_calls (calls) or max_dialogs (dialogs) was reached, or INVITEs over UDP waited longer than queue_delay (delay)."},
			[]string{"reason"}),
		held: f.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotdesk_sip_proxy_calls_held",
			Help: "INVITE transactions the proxy holds (counted against max_calls)."}, held),
		renegotiations: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_bridged_reinvites_total",
			Help: "re-INVITEs (hold, resume, transfer) of calls through the media bridge, by result (ok, refused: the other side's non-2xx, failed: the bridge could not renegotiate)."},
			[]string{"result"}),
		handoffs: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_handoffs_total",
			Help: "Requests handed between cluster nodes: sent to the node holding the callee's binding, and received: accepted, refused (bad or missing signature) or gone (the binding is no longer here)."},
			[]string{"result"}),
		parkHandoffs: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_park_handoffs_total",
			Help: "Park codes dialled for a slot whose call another cluster node parked: sent (handed to that node), accepted (taken from another node, to this node's park server) or unsigned (no cluster.secret to hand it over: answered 486)."},
			[]string{"result"}),
		branches: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_proxy_branches_total",
			Help: "Branches (forked INVITEs and requests) sent downstream."}),
	}
}

// resultLabel maps a final status to a bounded metric label.
func resultLabel(code int) string {
	switch {
	case code >= 200 && code < 300:
		return "answered"
	case code == 486 || code == 600 || code == 603:
		return "busy"
	case code == 487:
		return "cancelled"
	case code == 408 || code == 480:
		return "no_answer"
	case code == 404 || code == 484 || code == 604:
		return "not_found"
	case code == 403:
		return "forbidden"
	case code >= 300 && code < 400:
		return "redirected"
	}
	return "failed"
}

// methodLabelProxy bounds the method label of in-dialog requests.
func methodLabelProxy(m string) string {
	switch m {
	case "INVITE", "ACK", "BYE", "UPDATE", "INFO", "REFER", "MESSAGE", "PRACK", "NOTIFY", "SUBSCRIBE":
		return m
	}
	return "other"
}
