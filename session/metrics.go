package session

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the session layer's Prometheus metrics. The single-host
// manager feeds the job and segment metrics; the HA parts (renew worker,
// takeover, fencing, cleanup) feed theirs. Create one per process with
// NewMetrics; a nil *Metrics is not allowed (use NewMetrics(nil) to get
// unregistered metrics, e.g. in tests).
type Metrics struct {
	// Jobs counts this pod's jobs by state: starting, running, paused.
	Jobs *prometheus.GaugeVec
	// JobsStarted counts transcoder runs (a seek that restarts a job counts again).
	JobsStarted prometheus.Counter
	// Segments counts segments this pod published.
	Segments prometheus.Counter
	// TranscodeSeconds is the wall time spent producing each segment.
	TranscodeSeconds prometheus.Histogram
	// Frames counts video frames encoded.
	Frames prometheus.Counter
	// FPS is the encode speed of the last segment, frames per second.
	FPS prometheus.Gauge
	// SegmentWait is how long a segment request waited in the manager, by
	// result: hit (file existed), produced (waited for a job), proxied, error.
	SegmentWait *prometheus.HistogramVec

	// HA (fed by the renew/takeover/fence/cleanup code).
	Takeovers      *prometheus.CounterVec // reason
	LeaseRenewals  *prometheus.CounterVec // result
	Fenced         prometheus.Counter
	Proxied        prometheus.Counter
	CleanupDeleted prometheus.Counter
	CleanupSweeps  *prometheus.CounterVec // result
}

// NewMetrics creates the metrics and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wasmhls_jobs",
			Help: "Transcode jobs run by this pod, by state."}, []string{"state"}),
		JobsStarted: prometheus.NewCounter(prometheus.CounterOpts{Name: "wasmhls_jobs_started_total",
			Help: "Transcoder runs started (a seek restarts the run and counts again)."}),
		Segments: prometheus.NewCounter(prometheus.CounterOpts{Name: "wasmhls_segments_total",
			Help: "Segments published by this pod."}),
		TranscodeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wasmhls_transcode_seconds",
			Help: "Wall time to produce one segment.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 10)}),
		Frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "wasmhls_frames_encoded_total",
			Help: "Video frames encoded."}),
		FPS: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wasmhls_transcode_fps",
			Help: "Encode speed of the last segment published, frames per second."}),
		SegmentWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wasmhls_segment_latency_seconds",
			Help:    "Time a segment request spent until the file was ready, by result (hit, produced, proxied, error).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"result"}),
		Takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmhls_takeovers_total",
			Help: "Jobs this pod took over from another, by reason."}, []string{"reason"}),
		LeaseRenewals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmhls_lease_renewals_total",
			Help: "Lease renewals, by result."}, []string{"result"}),
		Fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "wasmhls_fenced_total",
			Help: "Jobs stopped because their lease was lost or its renew deadline passed."}),
		Proxied: prometheus.NewCounter(prometheus.CounterOpts{Name: "wasmhls_proxied_requests_total",
			Help: "Segment requests proxied to the owning pod."}),
		CleanupDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "wasmhls_cleanup_deleted_total",
			Help: "Segment directories deleted by the cleanup worker."}),
		CleanupSweeps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wasmhls_cleanup_sweeps_total",
			Help: "Cleanup sweeps, by result."}, []string{"result"}),
	}
	for _, s := range []string{jobStarting, jobRunning, jobPaused} {
		m.Jobs.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.Jobs, m.JobsStarted, m.Segments, m.TranscodeSeconds, m.Frames, m.FPS, m.SegmentWait,
			m.Takeovers, m.LeaseRenewals, m.Fenced, m.Proxied, m.CleanupDeleted, m.CleanupSweeps)
	}
	return m
}

// Job states as reported by wasmhls_jobs and GET /api/v1/sessions.
const (
	jobStarting = "starting" // creating the store record, opening the input
	jobRunning  = "running"  // producing segments
	jobPaused   = "paused"   // ahead_segments past the highest request
)
