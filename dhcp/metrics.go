package dhcp

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the hotdesk_dhcp_* series; labels are bounded (message type,
// result, drop reason, pool index, state).
type metrics struct {
	packets *prometheus.CounterVec
	// bound caches packets' children of the answered (type, result) pairs,
	// bound on first use (so unseen pairs stay absent from /metrics): the
	// label lookup hashed both strings on every packet.
	bound        [len(packetTypes)][len(packetResults)]boundCounter
	dropped      *prometheus.CounterVec
	storeErrors  *prometheus.CounterVec
	conflicts    prometheus.Counter
	sharedReads  prometheus.Counter
	trimmed      prometheus.Counter
	offerLatency prometheus.Histogram
}

// packetTypes and packetResults are the label values cached in bound.
var (
	packetTypes   = [...]string{"discover", "request", "inform", "decline", "release"}
	packetResults = [...]string{resOffer, resAck, resNak, resIgnored, resExhausted, resReleased, resDeclined, resError}
)

// boundCounter is one child of packets, bound once.
type boundCounter struct {
	once sync.Once
	c    prometheus.Counter
}

// countPacket counts a message of type typ handled with result.
func (m *metrics) countPacket(typ, result string) {
	t, r := slices.Index(packetTypes[:], typ), slices.Index(packetResults[:], result)
	if t < 0 || r < 0 {
		m.packets.WithLabelValues(typ, result).Inc()
		return
	}
	b := &m.bound[t][r]
	b.once.Do(func() { b.c = m.packets.WithLabelValues(typ, result) })
	b.c.Inc()
}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		packets: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hotdesk_dhcp_packets_total",
			Help: "DHCP client messages by type and what the server did with them.",
		}, []string{"type", "result"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hotdesk_dhcp_dropped_total",
			Help: "Packets dropped as malformed or hostile, by reason.",
		}, []string{"reason"}),
		storeErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hotdesk_dhcp_lease_store_errors_total",
			Help: "Lease store calls that failed, by operation.",
		}, []string{"op"}),
		conflicts: f.NewCounter(prometheus.CounterOpts{
			Name: "hotdesk_dhcp_ping_conflicts_total",
			Help: "Free addresses that answered ping-before-offer and were held back.",
		}),
		sharedReads: f.NewCounter(prometheus.CounterOpts{
			Name: "hotdesk_dhcp_shared_reads_total",
			Help: "Re-reads of the lease table after another server sharing it bound an address this one offered.",
		}),
		trimmed: f.NewCounter(prometheus.CounterOpts{
			Name: "hotdesk_dhcp_options_trimmed_total",
			Help: "Options left out of a reply because it would exceed the client's maximum message size.",
		}),
		offerLatency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "hotdesk_dhcp_offer_latency_seconds",
			Help:    "Time from receiving a DISCOVER to sending its OFFER.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1},
		}),
	}
	for i, p := range s.s.pools {
		for _, state := range []string{"used", "free"} {
			f.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "hotdesk_dhcp_leases",
				Help:        "Addresses of each pool's dynamic range in use (offered, bound, declined or reserved) and free.",
				ConstLabels: prometheus.Labels{"pool": p.name, "state": state},
			}, func() float64 {
				used, free := s.alloc.usage(i, s.now())
				if state == "used" {
					return float64(used)
				}
				return float64(free)
			})
		}
	}
	return m
}
