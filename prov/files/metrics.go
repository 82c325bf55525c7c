package files

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// filesMetrics are the hotdesk_prov_* series of the namespace, for HTTP and
// TFTP alike.
type filesMetrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	render   *prometheus.HistogramVec
	refused  *prometheus.CounterVec
	uploads  *prometheus.CounterVec
	// paramsRefused counts the parameters left out of stored .cfg uploads.
	paramsRefused *prometheus.CounterVec
	enrolled      *prometheus.CounterVec
	cache         *prometheus.CounterVec
	// enrollCapped counts enrolments held for approval by the per-source limit.
	enrollCapped prometheus.Counter
	// delivered counts the one unauthenticated hand-out of a device's
	// credentials; conflicts the requests the device cannot have made.
	delivered prometheus.Counter
	conflicts *prometheus.CounterVec
	// uploadBytes is what all kept uploads take, as of the last upload.
	uploadBytes prometheus.Gauge
	// replays counts digest answers presented a second time.
	replays prometheus.Counter

	// Children bound once: a label lookup (hashing, strconv, the vec's
	// lock) per request was measurable at tens of thousands of fetches/s.
	hit, miss prometheus.Counter
	boundMu   sync.RWMutex
	bound     map[requestLabels]prometheus.Counter
	sent      map[Proto]prometheus.Counter
}

type requestLabels struct {
	proto  Proto
	kind   FileKind
	status int
}

// observe counts one answered request and the bytes it sent.
func (m *filesMetrics) observe(p Proto, kind FileKind, status int, bytes int64) {
	k := requestLabels{p, kind, status}
	m.boundMu.RLock()
	c, ok := m.bound[k]
	s := m.sent[p]
	m.boundMu.RUnlock()
	if !ok {
		m.boundMu.Lock()
		// Bounded: statuses the server answers with, kinds and protocols
		// are each a handful.
		c = m.requests.WithLabelValues(string(p), string(kind), strconv.Itoa(status))
		m.bound[k] = c
		if s = m.sent[p]; s == nil {
			s = m.bytes.WithLabelValues(string(p), "sent")
			m.sent[p] = s
		}
		m.boundMu.Unlock()
	}
	c.Inc()
	if bytes > 0 {
		s.Add(float64(bytes))
	}
}

func newFilesMetrics(reg prometheus.Registerer) *filesMetrics {
	f := promauto.With(reg)
	m := &filesMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_requests_total",
			Help: "Provisioning requests answered, by protocol, file kind and status."}, []string{"proto", "kind", "status"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_bytes_total",
			Help: "Provisioning payload bytes, by protocol and direction (sent, received)."}, []string{"proto", "direction"}),
		render: f.NewHistogramVec(prometheus.HistogramOpts{Name: "hotdesk_prov_render_duration_seconds",
			Help:    "Time to render one file on a cache miss, by file kind.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}}, []string{"kind"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_uploads_refused_total",
			Help: "Uploads refused, by reason."}, []string{"reason"}),
		uploads: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_uploads_total",
			Help: "Uploads stored, by file kind."}, []string{"kind"}),
		paramsRefused: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_upload_params_refused_total",
			Help: "Parameters left out of stored .cfg uploads because a phone may not set them, by reason (provisioning, secret, address, not_phone_owned)."},
			[]string{"reason"}),
		enrolled: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_enrollments_total",
			Help: "Unknown devices seen, by the status they got (denied: not created)."}, []string{"status"}),
		cache: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_render_cache_total",
			Help: "Rendered-file cache lookups, by result."}, []string{"result"}),
		enrollCapped: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_prov_enroll_capped_total",
			Help: "Unknown devices held for approval because their source enrolled too many (enroll_per_source_per_minute)."}),
		delivered: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_prov_credentials_delivered_total",
			Help: "Devices' provisioning credentials handed out, the one time each is sent without authentication."}),
		conflicts: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_prov_identity_conflicts_total",
			Help: "Requests for a device's files the device cannot have made (a second device presenting its MAC), by reason."},
			[]string{"reason"}),
		uploadBytes: f.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_prov_upload_bytes",
			Help: "Bytes all kept upload versions take, as of the last upload (bounded by upload_total_bytes)."}),
		replays: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_prov_digest_replays_total",
			Help: "Provisioning digest answers refused because they were presented before (a replayed request)."}),
		bound: map[requestLabels]prometheus.Counter{},
		sent:  map[Proto]prometheus.Counter{},
	}
	m.hit, m.miss = m.cache.WithLabelValues("hit"), m.cache.WithLabelValues("miss")
	return m
}

// CountReplay counts a provisioning digest answer presented a second time.
func (f *Files) CountReplay() { f.m.replays.Inc() }
