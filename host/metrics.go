package host

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the plugin host's Prometheus series. Several Hosts (tests,
// benchmarks) may share one Registerer: an already registered collector is
// reused.
type metrics struct {
	calls     *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	reloads   *prometheus.CounterVec
	instGauge *prometheus.GaugeVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmhls_plugin_calls_total", Help: "Plugin calls by slot, operation and result (envelope status, or failed).",
		}, []string{"slot", "op", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wasmhls_plugin_call_seconds", Help: "Plugin call time, host side, including instance checkout.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 4, 10), // 5µs .. ~1.3s
		}, []string{"slot", "op"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmhls_plugin_reloads_total", Help: "Plugin reloads by slot and result (ok, failed).",
		}, []string{"slot", "result"}),
		instGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmhls_plugin_instances", Help: "Live plugin instances by slot (all generations).",
		}, []string{"slot"}),
	}
	if r != nil {
		m.calls = register(r, m.calls)
		m.seconds = register(r, m.seconds)
		m.reloads = register(r, m.reloads)
		m.instGauge = register(r, m.instGauge)
	}
	return m
}

func register[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting collector under our names is a programming error;
		// keep the unregistered one so calls still work.
	}
	return c
}

func (m *metrics) observeCall(slot, op, result string, d time.Duration) {
	m.calls.WithLabelValues(slot, op, result).Inc()
	m.seconds.WithLabelValues(slot, op).Observe(d.Seconds())
}

func (m *metrics) instances(slot string, delta float64) { m.instGauge.WithLabelValues(slot).Add(delta) }

func (m *metrics) reload(slot string, ok bool) {
	r := "ok"
	if !ok {
		r = "failed"
	}
	m.reloads.WithLabelValues(slot, r).Inc()
}

// callStats keeps counts and a window of recent call times for
// GET /api/v1/plugins (p50/p99 over the last statsWindow calls).
type callStats struct {
	calls, errors atomic.Uint64
	mu            sync.Mutex
	ring          []time.Duration
	next          int
}

const statsWindow = 1024

func newCallStats() *callStats { return &callStats{ring: make([]time.Duration, 0, statsWindow)} }

func (s *callStats) observe(d time.Duration, isErr bool) {
	s.calls.Add(1)
	if isErr {
		s.errors.Add(1)
	}
	s.mu.Lock()
	if len(s.ring) < statsWindow {
		s.ring = append(s.ring, d)
	} else {
		s.ring[s.next] = d
		s.next = (s.next + 1) % statsWindow
	}
	s.mu.Unlock()
}

// quantiles returns p50 and p99 of the window.
func (s *callStats) quantiles() (p50, p99 time.Duration) {
	s.mu.Lock()
	w := slices.Clone(s.ring)
	s.mu.Unlock()
	if len(w) == 0 {
		return 0, 0
	}
	slices.Sort(w)
	at := func(q float64) time.Duration { return w[min(len(w)-1, int(q*float64(len(w))))] }
	return at(0.50), at(0.99)
}
