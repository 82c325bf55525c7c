package daemon

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"hotdesk/prov/auth"
)

// daemonMetrics are the daemon's own metrics; each room registers its own.
type daemonMetrics struct {
	listenerUp     *prometheus.GaugeVec
	listenerErrors *prometheus.CounterVec
	reloadOK       prometheus.Gauge
	reloadTime     prometheus.Gauge
}

func newDaemonMetrics(reg *prometheus.Registry, version string) *daemonMetrics {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(reg)
	if version == "" {
		version = "dev"
	}
	f.NewGauge(prometheus.GaugeOpts{
		Name:        "hotdesk_build_info",
		Help:        "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	}).Set(1)
	m := &daemonMetrics{
		listenerUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hotdesk_listener_up",
			Help: "1 while the named listener is serving.",
		}, []string{"name", "proto"}),
		listenerErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hotdesk_listener_errors_total",
			Help: "Listeners that stopped with an error.",
		}, []string{"name"}),
		reloadOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "hotdesk_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded.",
		}),
		reloadTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "hotdesk_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful configuration reload.",
		}),
	}
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
	return m
}

// registerHasherMetrics shows the shared argon2id hasher: how much work
// logins cost and whether callers queue for it (a login storm, a guesser).
func registerHasherMetrics(reg prometheus.Registerer, h *auth.Hasher) {
	f := promauto.With(reg)
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "hotdesk_prov_password_hashes_total",
		Help: "argon2id password hashes and checks started.",
	}, func() float64 { return float64(h.Runs()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hotdesk_prov_password_hash_waiting",
		Help: "Password checks waiting for a free argon2id slot.",
	}, func() float64 { return float64(h.Waiting()) })
}
