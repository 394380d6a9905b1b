package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmhls/wasmhls/abi"
)

// RenewConfig configures the pod's renew worker.
type RenewConfig struct {
	// Pod is this pod's name: the owner written into every lease.
	Pod string
	// Lease is the duration each renew asks for (lease.duration).
	Lease time.Duration
	// Every is the renew period (lease.renew_every).
	Every time.Duration
	// Deadline is the self-fencing deadline: a lease whose last successful
	// renew was sent longer ago than this stops writing (CheckWrite fails).
	// 0 means Lease - Every, which leaves one renew period of margin for
	// clock rate differences between this pod and the store.
	Deadline time.Duration
	// Now is a monotonic clock (time.Now when nil; tests inject one). Only
	// differences between its readings are used, never its wall time.
	Now func() time.Time
	// Metrics, when set, are the process's session metrics: the worker
	// feeds their LeaseRenewals and Fenced. Otherwise the worker creates
	// wasmhls_lease_renewals_total{result} and wasmhls_fenced_total and
	// registers them on Registerer (nil: not registered).
	Metrics    *Metrics
	Registerer prometheus.Registerer
}

// RenewWorker renews every lease this pod holds, in one goroutine (Run), and
// fences the leases it loses. The Manager adds a lease when it creates or
// takes over a job and removes it when the job ends; the transcoder asks the
// lease (CheckWrite) before it publishes anything.
type RenewWorker struct {
	store   Store
	cfg     RenewConfig
	log     *slog.Logger
	metrics *renewMetrics

	mu       sync.Mutex
	leases   map[string]*Lease
	degraded error // the last round's store error; nil once renews succeed
}

// NewRenewWorker returns a worker; start it with Run. It panics on a
// configuration that could never keep a lease (a programming error: config
// validation already refuses these values from an operator).
func NewRenewWorker(store Store, cfg RenewConfig, log *slog.Logger) *RenewWorker {
	if cfg.Lease <= 0 || cfg.Every <= 0 || cfg.Every >= cfg.Lease {
		panic(fmt.Sprintf("session: renew worker needs 0 < every (%s) < lease (%s)", cfg.Every, cfg.Lease))
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = cfg.Lease - cfg.Every
	}
	if cfg.Deadline >= cfg.Lease {
		panic(fmt.Sprintf("session: renew deadline %s must be shorter than the lease %s", cfg.Deadline, cfg.Lease))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RenewWorker{
		store:   store,
		cfg:     cfg,
		log:     log.With("component", "renew", "pod", cfg.Pod),
		metrics: newRenewMetrics(cfg.Registerer, cfg.Metrics),
		leases:  map[string]*Lease{},
	}
}

// Add starts renewing job id at epoch, as just created or taken over by this
// pod, and returns its Lease. The create/takeover call that granted the lease
// was sent a moment before Add; AddSent takes that send time when the caller
// has it, Add uses now (the difference is one store round trip, well inside
// the margin between Deadline and the lease).
func (w *RenewWorker) Add(id string, epoch int64, p abi.Progress) *Lease {
	return w.AddSent(id, epoch, p, w.cfg.Now())
}

// AddSent is Add with the time (from the worker's clock, see Now) at which
// the create or takeover that granted the lease was sent. A lease already
// held under id is replaced and fenced.
func (w *RenewWorker) AddSent(id string, epoch int64, p abi.Progress, sent time.Time) *Lease {
	l := &Lease{
		ID:       id,
		Epoch:    epoch,
		w:        w,
		fenced:   make(chan struct{}),
		progress: p,
		lastOK:   sent,
	}
	w.mu.Lock()
	old := w.leases[id]
	w.leases[id] = l
	w.mu.Unlock()
	if old != nil {
		old.fence(fmt.Errorf("%w: job %s epoch %d replaced by epoch %d on this pod", errLeaseRemoved, id, old.Epoch, epoch))
	}
	return l
}

// Now reads the worker's clock, for callers of AddSent.
func (w *RenewWorker) Now() time.Time { return w.cfg.Now() }

// Remove stops renewing job id (the job ended, was released or deleted). Its
// Lease is fenced so a writer that is still running stops publishing.
func (w *RenewWorker) Remove(id string) {
	w.mu.Lock()
	l := w.leases[id]
	delete(w.leases, id)
	w.mu.Unlock()
	if l != nil {
		l.fence(fmt.Errorf("%w: job %s epoch %d", errLeaseRemoved, id, l.Epoch))
	}
}

// Leases returns the leases held now, for GET /api/v1/sessions and drain.
func (w *RenewWorker) Leases() []*Lease {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*Lease, 0, len(w.leases))
	for _, l := range w.leases {
		out = append(out, l)
	}
	return out
}

// Degraded is non-nil while renews fail because the store cannot be reached
// (the pod's /readyz reports it). It says nothing when the pod holds no
// lease: readiness must also check the store itself.
func (w *RenewWorker) Degraded() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.degraded
}

// Run renews every lease each Every until ctx is done. A store error is
// counted and logged, never fatal: the lease keeps its last good renew and
// self-fences at its deadline.
func (w *RenewWorker) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.RenewOnce(ctx)
		}
	}
}

// RenewOnce renews every lease once, one after the other. Each call gets at
// most Every: a store slower than that has already failed this round.
func (w *RenewWorker) RenewOnce(ctx context.Context) {
	var (
		roundErr error
		renewed  int
	)
	for _, l := range w.Leases() {
		if ctx.Err() != nil {
			return
		}
		err := w.renew(ctx, l)
		switch {
		case err == nil:
			renewed++
		case errors.Is(err, ErrLost):
			// Not a store failure: the store answered, the job is gone.
		default:
			roundErr = err
		}
	}
	w.mu.Lock()
	switch {
	case roundErr != nil:
		w.degraded = fmt.Errorf("renew: session store unreachable: %w", roundErr)
	case renewed > 0 || len(w.leases) == 0:
		w.degraded = nil
	}
	w.mu.Unlock()
}

// renew renews one lease. It returns nil, an error wrapping ErrLost (the
// lease was fenced), or a store error.
func (w *RenewWorker) renew(ctx context.Context, l *Lease) error {
	if l.Err() != nil {
		// Fenced since the round began (removed, replaced, or lost through a
		// commit): stop renewing it.
		w.mu.Lock()
		if w.leases[l.ID] == l {
			delete(w.leases, l.ID)
		}
		w.mu.Unlock()
		return nil
	}
	p := l.Progress()
	cctx, cancel := context.WithTimeout(ctx, w.cfg.Every)
	sent := w.cfg.Now() // before the call: the store extends from a moment after this
	expires, err := w.store.Renew(cctx, l.ID, w.cfg.Pod, l.Epoch, w.cfg.Lease, p)
	cancel()
	log := w.log.With("job", l.ID, "epoch", l.Epoch)
	switch {
	case err == nil:
		w.metrics.renewals.WithLabelValues("ok").Inc()
		if l.renewed(sent, expires) {
			log.Info("lease renewed after a self-fence; writes resume")
		}
		return nil
	case errors.Is(err, ErrLost), errors.Is(err, ErrNotFound):
		// NotFound: the record expired or was deleted (e.g. Redis lost its
		// data); either way this pod no longer owns the job.
		w.metrics.renewals.WithLabelValues("lost").Inc()
		lost := fmt.Errorf("%w: renew job %s epoch %d: %w", ErrLost, l.ID, l.Epoch, err)
		if errors.Is(err, ErrLost) {
			lost = fmt.Errorf("renew job %s epoch %d: %w", l.ID, l.Epoch, err)
		}
		w.mu.Lock()
		if w.leases[l.ID] == l {
			delete(w.leases, l.ID)
		}
		w.mu.Unlock()
		if l.fence(lost) {
			log.Warn("lease lost; job fenced", "err", err)
		}
		return lost
	default:
		w.metrics.renewals.WithLabelValues("error").Inc()
		log.Warn("lease renew failed", "err", err, "since_last_renew_sent", w.cfg.Now().Sub(l.lastSent()))
		l.checkDeadline() // count and log a self-fence as soon as it happens
		return fmt.Errorf("renew job %s: %w", l.ID, err)
	}
}
