package session

import "github.com/prometheus/client_golang/prometheus"

// cleanupMetrics are the cleanup worker's metrics.
type cleanupMetrics struct {
	deleted    prometheus.Counter     // segment directories
	sweeps     *prometheus.CounterVec // result: ok | locked | store_error | scan_error | plugin_error | error
	tmpRemoved prometheus.Counter
	refused    prometheus.Counter
}

// newCleanupMetrics feeds the process's session Metrics when given (shared
// non-nil) and registers its own counters on reg (nil: not registered).
func newCleanupMetrics(reg prometheus.Registerer, shared *Metrics) *cleanupMetrics {
	m := &cleanupMetrics{
		tmpRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wasmhls_cleanup_tmp_removed_total",
			Help: "Dead writers' *.tmp files removed by the cleanup sweep.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wasmhls_cleanup_refused_total",
			Help: "Deletions the cleanup plugin proposed and the host refused (bad path, live lease, written since the scan).",
		}),
	}
	if shared != nil {
		m.deleted, m.sweeps = shared.CleanupDeleted, shared.CleanupSweeps
	} else {
		m.deleted = registerOrReuse(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wasmhls_cleanup_deleted_total",
			Help: "Segment directories deleted by the cleanup worker.",
		}))
		m.sweeps = registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmhls_cleanup_sweeps_total",
			Help: "Cleanup sweeps, by result: ok, locked (another pod sweeps), store_error, scan_error, plugin_error, error.",
		}, []string{"result"}))
	}
	m.tmpRemoved = registerOrReuse(reg, m.tmpRemoved)
	m.refused = registerOrReuse(reg, m.refused)
	return m
}
