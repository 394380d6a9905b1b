package session

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// renewMetrics are the renew worker's and fencing's metrics.
type renewMetrics struct {
	renewals *prometheus.CounterVec // result: ok | lost | error
	fenced   prometheus.Counter
}

// newRenewMetrics feeds the process's session Metrics when the Manager
// passes them (shared is non-nil), else creates the counters and registers
// them on reg.
func newRenewMetrics(reg prometheus.Registerer, shared *Metrics) *renewMetrics {
	if shared != nil {
		return &renewMetrics{renewals: shared.LeaseRenewals, fenced: shared.Fenced}
	}
	m := &renewMetrics{
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmhls_lease_renewals_total",
			Help: "Lease renew calls by result: ok, lost (taken over or record gone), error (store unreachable).",
		}, []string{"result"}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wasmhls_fenced_total",
			Help: "Jobs this pod stopped writing for: lease lost, or renew deadline passed (self-fence).",
		}),
	}
	m.renewals = registerOrReuse(reg, m.renewals)
	m.fenced = registerOrReuse(reg, m.fenced)
	return m
}

// registerOrReuse registers c on reg, or returns the collector already
// registered under the same name (a second worker on one registry, as in
// tests, shares the counters). Any other registration error is a programming
// error (a name clash with a different type) and panics.
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("session: register metric: " + err.Error())
	}
	return c
}
