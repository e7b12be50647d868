package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series Latchkey exports.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	signins  *prometheus.CounterVec
	// series caches the request counter and latency histogram of each route and
	// status, so a request does not hash its label values into the vectors again.
	series sync.Map // routeStatus → *requestSeries
}

type routeStatus struct {
	route  string
	status int
}

type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// observe counts one request of route answered with status after d.
func (m *Metrics) observe(route string, status int, d time.Duration) {
	k := routeStatus{route, status}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &requestSeries{
			count:   m.requests.WithLabelValues(route, strconv.Itoa(status)),
			latency: m.latency.WithLabelValues(route),
		})
	}
	rs := v.(*requestSeries)
	rs.count.Inc()
	rs.latency.Observe(d.Seconds())
}

// NewMetrics registers the series on reg.
func NewMetrics(reg *prometheus.Registry, hashStats func() (int, int)) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latchkey_http_requests_total",
			Help: "HTTP requests by route pattern and status."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "latchkey_http_request_duration_seconds",
			Help: "HTTP request latency by route pattern.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}},
			[]string{"route"}),
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latchkey_signin_outcomes_total",
			Help: "Sign-in steps by step and outcome."}, []string{"step", "outcome"}),
	}
	reg.MustRegister(m.requests, m.latency, m.signins)
	if hashStats != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "latchkey_password_hash_in_flight",
				Help: "Password hashes being computed."}, func() float64 { n, _ := hashStats(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "latchkey_password_hash_queue_depth",
				Help: "Sign-ins waiting for a hashing slot."}, func() float64 { _, n := hashStats(); return float64(n) }),
		)
	}
	return m
}

// Observe counts one sign-in outcome; the auth.Service calls it.
func (m *Metrics) Observe(step, outcome string) { m.signins.WithLabelValues(step, outcome).Inc() }
