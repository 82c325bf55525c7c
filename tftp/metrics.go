package tftp

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Operations and results used as label values (bounded sets).
const (
	opRead  = "read"
	opWrite = "write"

	resOK          = "ok"
	resNotFound    = "not_found"
	resForbidden   = "forbidden"
	resInvalidName = "invalid_name"
	resTooLarge    = "too_large"
	resBusy        = "busy"
	resRefused     = "refused"
	resTimeout     = "timeout"
	resError       = "error"

	reasonRateLimited    = "rate_limited"
	reasonUnacknowledged = "unacknowledged"
)

type metrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	active   prometheus.Gauge
	dropped  *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hotdesk_tftp_requests_total",
			Help: "TFTP read and write requests by outcome.",
		}, []string{"op", "result"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hotdesk_tftp_bytes_total",
			Help: "File bytes sent (op=read) and received (op=write) over TFTP, including failed transfers.",
		}, []string{"op"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hotdesk_tftp_transfer_duration_seconds",
			Help:    "Duration of TFTP transfers, from request to last packet, by outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"op", "result"}),
		active: f.NewGauge(prometheus.GaugeOpts{
			Name: "hotdesk_tftp_transfers_active",
			Help: "TFTP transfers in progress.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hotdesk_tftp_dropped_total",
			Help: "Datagrams on the TFTP port that started no transfer, by reason.",
		}, []string{"reason"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hotdesk_tftp_refused_total",
			Help: "TFTP requests refused before any file data was sent, by reason (rate_limited, unacknowledged).",
		}, []string{"reason"}),
	}
	// Pre-create the common series so dashboards see zeros, not gaps.
	for _, op := range []string{opRead, opWrite} {
		for _, r := range []string{resOK, resNotFound, resTooLarge, resError} {
			m.requests.WithLabelValues(op, r)
		}
		m.bytes.WithLabelValues(op)
	}
	m.dropped.WithLabelValues("malformed")
	m.refused.WithLabelValues(reasonRateLimited)
	m.refused.WithLabelValues(reasonUnacknowledged)
	return m
}
