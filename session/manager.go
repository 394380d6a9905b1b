package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/transcode"
)

var (
	// ErrUnavailable: no transcoder can produce the segment now (max_jobs
	// reached, shutting down, or another pod owns the job and cannot be
	// reached). hls answers 503 with Retry-After.
	ErrUnavailable = errors.New("no transcoder available")
	// ErrSegmentRange: the segment number is past the end of the item (404).
	ErrSegmentRange = errors.New("segment out of range")
)

// ManagerConfig configures a Manager; serve.go fills it from config.Config.
type ManagerConfig struct {
	Pod          string // this pod's name: the owner in job records
	AdvertiseURL string // how other pods reach this one (owner_url)
	TranscodeDir string // segments go to TranscodeDir/{item}/{variant-hash}/
	Lease        time.Duration
	RenewEvery   time.Duration
	// AheadSegments: a job pauses when it is this many segments past the
	// highest requested one; a request this far ahead of a job waits for it,
	// farther is a seek that restarts the job.
	AheadSegments int
	MaxJobs       int           // jobs this pod runs at once; more → ErrUnavailable
	IdleTimeout   time.Duration // a job with no request for this long stops
	// RetryAfter is what a 503 tells the client; 0: 2 s.
	RetryAfter time.Duration
}

// Manager owns the transcode jobs of this pod. A job is one (play session,
// variant); its segments go to a directory shared by every session of the
// same item and variant parameters.
type Manager struct {
	cfg     ManagerConfig
	store   Store
	policy  TakeoverPolicy
	log     *slog.Logger
	metrics *Metrics
	// run is transcode.Run; a test in this package may wrap it to observe runs.
	run func(context.Context, transcode.JobSpec) error
	// renew renews the lease of every job this pod owns (renew.go).
	renew *RenewWorker

	ctx    context.Context // parent of every job; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per job goroutine

	mu     sync.Mutex
	jobs   map[string]*job
	claims map[string]*job // segment path → the local job producing it
	closed bool
}

// SegmentRequest is one segment request as hls hands it over.
type SegmentRequest struct {
	Item     string // catalog id
	ItemPath string // absolute path of the source file
	Info     *transcode.MediaInfo
	Session  string
	Variant  transcode.Variant
	N        int
	// Proxied is true when another pod proxied this request here: it must
	// not be proxied again (loop guard).
	Proxied bool
	// ProxyFailed is the owner URL an earlier ProxyTo of this request could
	// not reach (connection refused, timeout, 503): the request is decided
	// again without proxying there until that owner shows it is alive.
	ProxyFailed string
}

// SegmentResult: Path of the finished segment, or ProxyTo (an owner_url)
// when another pod owns the job and the request should be proxied there.
type SegmentResult struct {
	Path    string
	ProxyTo string
}

// NewManager returns a Manager; store is required, policy may be nil on a
// single host (no other pod can own a job).
func NewManager(cfg ManagerConfig, store Store, policy TakeoverPolicy, log *slog.Logger, metrics *Metrics) *Manager {
	if log == nil {
		log = slog.Default()
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	if cfg.AheadSegments < 1 {
		cfg.AheadSegments = 1
	}
	if cfg.MaxJobs < 1 {
		cfg.MaxJobs = 1
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 2 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.RenewEvery <= 0 || cfg.RenewEvery*2 > cfg.Lease {
		cfg.RenewEvery = cfg.Lease / 3
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, store: store, policy: policy, log: log.With("pod", cfg.Pod), metrics: metrics,
		run: defaultRun, ctx: ctx, cancel: cancel,
		jobs: map[string]*job{}, claims: map[string]*job{},
	}
	// One renew goroutine for the pod, owned by the Manager: Close stops it.
	m.renew = NewRenewWorker(store, RenewConfig{Pod: cfg.Pod, Lease: cfg.Lease, Every: cfg.RenewEvery, Metrics: metrics}, log)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.renew.Run(ctx)
	}()
	return m
}

// RetryAfter is how long a client should wait after ErrUnavailable.
func (m *Manager) RetryAfter() time.Duration { return m.cfg.RetryAfter }

// jobID is the store id of the job of (session, variant).
func jobID(session, variant string) string { return session + ":" + variant }

// SegmentDir is where the segments of (item, variant) live.
func (m *Manager) SegmentDir(item string, v transcode.Variant) string {
	return filepath.Join(m.cfg.TranscodeDir, item, v.Hash())
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Segment returns segment r.N once it exists: at once if the file is there,
// otherwise after the (started, joined or restarted) job has produced it.
func (m *Manager) Segment(ctx context.Context, r SegmentRequest) (SegmentResult, error) {
	begin := time.Now()
	res, result, err := m.segment(ctx, r)
	if err != nil {
		result = "error"
	}
	m.metrics.SegmentWait.WithLabelValues(result).Observe(time.Since(begin).Seconds())
	return res, err
}

func (m *Manager) segment(ctx context.Context, r SegmentRequest) (SegmentResult, string, error) {
	if r.Info == nil {
		return SegmentResult{}, "", fmt.Errorf("segment %d of %s: no media info", r.N, r.Item)
	}
	if r.Item == "" || r.Item != filepath.Base(r.Item) || strings.HasPrefix(r.Item, ".") {
		return SegmentResult{}, "", fmt.Errorf("segment %d: invalid item id %q", r.N, r.Item)
	}
	// ":" separates session and variant in job ids (see jobID).
	if r.Session == "" || strings.ContainsAny(r.Session, ":/") {
		return SegmentResult{}, "", fmt.Errorf("segment %d of %s: invalid session id %q", r.N, r.Item, r.Session)
	}
	count := transcode.SegmentCount(r.Info, r.Variant.SegmentSeconds)
	if r.N < 0 || r.N >= count {
		return SegmentResult{}, "", fmt.Errorf("segment %d of %s (%d segments): %w", r.N, r.Item, count, ErrSegmentRange)
	}
	dir := m.SegmentDir(r.Item, r.Variant)
	path := transcode.SegmentPath(dir, r.N)
	id := jobID(r.Session, r.Variant.Name)
	if fileExists(path) {
		// The cached path: no store or plugin call, only the throttle learns
		// where this viewer is.
		m.touch(id, r.N)
		return SegmentResult{Path: path}, "hit", nil
	}
	return m.produce(ctx, r, nil, dir, count)
}

// produce gets segment r.N made by a local job (joined, restarted or
// started; with rec non-nil a started job runs under rec, a record this pod
// won in a takeover) and waits for it. A job whose record another pod owns
// hands the request to the non-owner path (remote).
func (m *Manager) produce(ctx context.Context, r SegmentRequest, rec *abi.JobRecord, dir string, count int) (SegmentResult, string, error) {
	path := transcode.SegmentPath(dir, r.N)
	id := jobID(r.Session, r.Variant.Name)
	ended, rounds := 0, 0
	for {
		j, err := m.acquire(ctx, id, r, rec, dir, count)
		if err != nil {
			return SegmentResult{}, "", err
		}
		select {
		case <-j.ready:
		case <-ctx.Done():
			return SegmentResult{}, "", ctx.Err()
		}
		if j.foreign != nil {
			// Each round here is a store decision (create found another
			// owner, a takeover won or lost); a few are plenty.
			if rounds++; rounds > 4 {
				return SegmentResult{}, "", fmt.Errorf("%w: job %s changed hands %d times during one request", ErrUnavailable, id, rounds)
			}
			res, adopt, err := m.remote(ctx, *j.foreign, r)
			switch {
			case errors.Is(err, errRecreate):
				rec = nil
				continue
			case err != nil:
				return SegmentResult{}, "", err
			case adopt != nil:
				rec = adopt
				continue
			case res.ProxyTo != "":
				return res, "proxied", nil
			default:
				return res, "hit", nil
			}
		}
		if j.createErr != nil {
			return SegmentResult{}, "", fmt.Errorf("%w: create job %s: %v", ErrUnavailable, id, j.createErr)
		}
		ok, err := j.wait(ctx, path)
		if err != nil && m.policy != nil && errors.Is(err, ErrLost) && ctx.Err() == nil {
			// Our job lost its lease (taken over): the request goes on as
			// one for another pod's job.
			if ended++; ended > 2 {
				return SegmentResult{}, "", err
			}
			rec = nil
			continue
		}
		if err != nil {
			return SegmentResult{}, "", err
		}
		if ok {
			return SegmentResult{Path: path}, "produced", nil
		}
		// The job ended cleanly (idle, stopped, finished) without this
		// segment: start another one, but never loop forever.
		rec = nil
		if ended++; ended > 2 {
			return SegmentResult{}, "", fmt.Errorf("job %s ended %d times without producing segment %d: %w", id, ended, r.N, ErrUnavailable)
		}
	}
}

// touch tells a running job that its viewer asked for segment n.
func (m *Manager) touch(id string, n int) {
	m.mu.Lock()
	j := m.jobs[id]
	m.mu.Unlock()
	if j != nil {
		j.requested(n, false)
	}
}

// acquire returns the job of id, started if none runs: the map entry is the
// singleflight, so concurrent requests for one job start one goroutine.
func (m *Manager) acquire(ctx context.Context, id string, r SegmentRequest, rec *abi.JobRecord, dir string, count int) (*job, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, fmt.Errorf("%w: pod %s is shutting down", ErrUnavailable, m.cfg.Pod)
		}
		j := m.jobs[id]
		if j != nil {
			m.mu.Unlock()
			if j.requested(r.N, true) {
				return j, nil
			}
			// The job is ending: wait until it is gone, then start anew.
			select {
			case <-j.done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if len(m.jobs) >= m.cfg.MaxJobs {
			m.mu.Unlock()
			return nil, fmt.Errorf("%w: %d of %d jobs running on pod %s", ErrUnavailable, len(m.jobs), m.cfg.MaxJobs, m.cfg.Pod)
		}
		j = newJob(m, id, r, dir, count)
		if rec != nil {
			// Taken over: restart where the last owner stopped if the viewer
			// is merely behind it, else at the request.
			j.adopted, j.adoptedSent = rec, m.renew.Now()
			j.start = takeoverStart(*rec, r.N, m.cfg.AheadSegments)
			j.current = j.start
		}
		m.jobs[id] = j
		m.wg.Add(1)
		m.mu.Unlock()
		go j.loop()
		return j, nil
	}
}

// claim marks segment path as being produced by j. It returns the job that
// already produces it, if another, so j waits instead of writing the same
// n.ts.tmp twice (two sessions on one variant).
func (m *Manager) claim(path string, j *job) *job {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.claims[path]; o != nil && o != j {
		return o
	}
	m.claims[path] = j
	return nil
}

// unclaim drops j's claims (path "" = all of them).
func (m *Manager) unclaim(path string, j *job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if path != "" {
		if m.claims[path] == j {
			delete(m.claims, path)
		}
		return
	}
	for p, o := range m.claims {
		if o == j {
			delete(m.claims, p)
		}
	}
}

// ownedJobs lists the jobs that hold a record in the store (the renew
// worker renews exactly these).
func (m *Manager) ownedJobs() []*job {
	var out []*job
	for _, j := range m.snapshot() {
		select {
		case <-j.ready:
			if j.foreign == nil && j.createErr == nil {
				out = append(out, j)
			}
		default:
		}
	}
	return out
}

// forget removes j from the job table.
func (m *Manager) forget(j *job) {
	m.mu.Lock()
	if m.jobs[j.id] == j {
		delete(m.jobs, j.id)
	}
	m.mu.Unlock()
	m.unclaim("", j)
}

// JobStatus is one local job in GET /api/v1/sessions.
type JobStatus struct {
	ID               string  `json:"id"`
	Session          string  `json:"session"`
	Item             string  `json:"item"`
	Variant          string  `json:"variant"`
	State            string  `json:"state"`
	Owner            string  `json:"owner"`
	Epoch            int64   `json:"epoch"`
	Start            int     `json:"start_segment"`
	Current          int     `json:"current_segment"`
	LastCompleted    int     `json:"last_completed_segment"`
	HighestRequested int     `json:"last_requested_segment"`
	Segments         int     `json:"segments"`
	LeaseExpiresMs   int64   `json:"lease_expires_ms"` // store clock, from the last renew (0 before it)
	IdleSeconds      float64 `json:"idle_s"`
}

// SessionsView is the body of GET /api/v1/sessions.
type SessionsView struct {
	Pod        string          `json:"pod"`
	Jobs       []JobStatus     `json:"jobs"`
	Store      []abi.JobRecord `json:"store"`
	StoreNowMs int64           `json:"store_now_ms"`
	StoreError string          `json:"store_error,omitempty"`
}

// Sessions lists the jobs this pod runs and the records the store knows.
func (m *Manager) Sessions(ctx context.Context) (any, error) {
	v := SessionsView{Pod: m.cfg.Pod, Jobs: []JobStatus{}}
	for _, j := range m.snapshot() {
		v.Jobs = append(v.Jobs, j.status())
	}
	recs, now, err := m.store.List(ctx, abi.ListRequest{})
	if err != nil {
		// The local view is still useful when the store is down.
		v.StoreError = err.Error()
	}
	if recs == nil {
		recs = []abi.JobRecord{}
	}
	v.Store, v.StoreNowMs = recs, now
	return v, nil
}

func (m *Manager) snapshot() []*job {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j)
	}
	return out
}

// StopSession stops every job of a play session: the local ones directly;
// records owned by other pods are deleted in the store, so their owner's next
// commit fails and it stops. It returns how many jobs were stopped.
func (m *Manager) StopSession(ctx context.Context, session string) (int, error) {
	stopped := 0
	var local []*job
	for _, j := range m.snapshot() {
		if j.session == session {
			local = append(local, j)
		}
	}
	for _, j := range local {
		j.stop()
	}
	for _, j := range local {
		select {
		case <-j.done:
			// A job that found another pod's record was never this pod's.
			if j.foreign == nil && j.createErr == nil {
				stopped++
			}
		case <-ctx.Done():
			return stopped, ctx.Err()
		}
	}
	recs, _, err := m.store.List(ctx, abi.ListRequest{})
	if err != nil {
		return stopped, fmt.Errorf("stop session %s: list store: %w", session, err)
	}
	for _, rec := range recs {
		if !strings.HasPrefix(rec.ID, session+":") || rec.Owner == m.cfg.Pod {
			continue
		}
		if err := m.store.Delete(ctx, rec.ID, rec.Owner, rec.Epoch); err != nil && !errors.Is(err, ErrNotFound) {
			return stopped, fmt.Errorf("stop session %s: delete job %s of %s: %w", session, rec.ID, rec.Owner, err)
		}
		stopped++
	}
	return stopped, nil
}

// ErrDegraded wraps a readiness problem that every pod shares (the session
// store is unreachable or renews fail): /readyz reports "degraded" but keeps
// the pod in rotation, because all pods share one store and taking them all
// out would stop serving the segments that exist (issue 4: existing files
// keep being served while Redis is down).
var ErrDegraded = errors.New("degraded")

// readyProbeTimeout bounds the store probe of Ready.
const readyProbeTimeout = 200 * time.Millisecond

// Ready reports nil when this pod takes jobs and its store answers; an
// error wrapping ErrDegraded while the store is unreachable or renews fail;
// any other error while draining.
func (m *Manager) Ready() error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return errors.New("draining: shutting down, jobs released")
	}
	// Short: a probe that waits on a dead store (client retries) would make
	// /readyz time out, which a load balancer reads as "not ready"; a slow
	// store is reported as degraded instead.
	ctx, cancel := context.WithTimeout(m.ctx, readyProbeTimeout)
	defer cancel()
	if _, err := m.store.Get(ctx, "wasmhls-readyz-probe"); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: session store: %v", ErrDegraded, err)
	}
	if err := m.renew.Degraded(); err != nil {
		return fmt.Errorf("%w: %v", ErrDegraded, err)
	}
	return nil
}

// Close stops every job (each releases its record, so another pod can take
// it over at once) and waits for their goroutines, or until ctx ends.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close session manager: %w", ctx.Err())
	}
}
