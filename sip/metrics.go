package sip

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	bindings      prometheus.GaugeFunc
	register      *prometheus.CounterVec
	authFailures  prometheus.Counter
	lockouts      prometheus.Counter
	foreignNonces prometheus.Counter
	notify        *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	dropped       *prometheus.CounterVec
	eventsDropped prometheus.Counter
	// eventsCoalesced and eventsQueued show the event queue to prov.
	eventsCoalesced prometheus.Counter
	eventsQueued    prometheus.Gauge
	storeErrors     prometheus.Counter
	storeRows       prometheus.Counter
	elsewhere       prometheus.Counter
	requests        *prometheus.CounterVec
	tcpRefused      *prometheus.CounterVec
	udpShed         *prometheus.CounterVec
	udpQueued       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, bindings func() float64) *metrics {
	f := promauto.With(reg)
	return &metrics{
		bindings: f.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotdesk_sip_bindings",
			Help: "Active registrar bindings."}, bindings),
		register: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_register_total",
			Help: "REGISTER requests by result."}, []string{"result"}),
		authFailures: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_auth_failures_total",
			Help: "Digest authentications that failed (wrong password or unknown user)."}),
		lockouts: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_lockouts_total",
			Help: "Source addresses or usernames locked out after repeated failures."}),
		foreignNonces: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_auth_foreign_nonce_total",
			Help: "Credentials refused because their nonce was not issued to their source (spoofed or forged); not counted toward lockouts."}),
		notify: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_notify_total",
			Help: "NOTIFY check-sync requests by result."}, []string{"result"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{Name: "hotdesk_sip_request_duration_seconds",
			Help:    "Time to answer a request handled by the registrar.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1}}, []string{"method"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_dropped_total",
			Help: "Messages dropped without an answer, by reason."}, []string{"reason"}),
		eventsDropped: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_events_dropped_total",
			Help: "Refreshed events dropped because the consumer fell behind."}),
		eventsCoalesced: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_events_coalesced_total",
			Help: "Refreshed events not queued: one for the same binding and Call-ID was waiting already."}),
		eventsQueued: f.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_sip_events_queued",
			Help: "Binding events waiting for the provisioning side."}),
		storeErrors: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_store_errors_total",
			Help: "Failed write-behind batches to the binding store (retried)."}),
		storeRows: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_store_rows_total",
			Help: "Binding upserts and deletes written to the store."}),
		elsewhere: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_sip_lookup_elsewhere_total",
			Help: "Bindings found on other cluster nodes for a lookup with none here."}),
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_requests_total",
			Help: "Requests answered by the registrar, by method class and status class."}, []string{"method", "code"}),
		tcpRefused: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_tcp_refused_total",
			Help: "TCP/TLS connections closed at accept (total or per-source cap) or accept errors survived (accept_error), by reason."},
			[]string{"reason"}),
		udpShed: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_udp_shed_total",
			Help: "REGISTERs and OPTIONS over UDP answered 503 with Retry-After unparsed, by reason (queue_full: udp_queue reached; queue_delay: waited longer than udp_queue_delay)."},
			[]string{"reason"}),
		udpQueued: f.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_sip_udp_queued",
			Help: "REGISTERs and OPTIONS over UDP waiting for a worker (at most udp_queue per socket)."}),
	}
}
