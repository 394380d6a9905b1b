package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/internal/testmedia"
	"github.com/wasmhls/wasmhls/transcode"
)

// leasePolicy is a test double of the default takeover policy
// (plugins/takeover-lease): take over a released or expired job, else
// proxy. err, when set, is what every Decide returns.
type leasePolicy struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (p *leasePolicy) Decide(_ context.Context, req abi.DecideRequest) (abi.DecideResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.err != nil {
		return abi.DecideResponse{}, p.err
	}
	if req.Record.State == abi.StateReleased || req.Record.LeaseExpiresMs <= req.NowMs {
		return abi.DecideResponse{Decision: abi.DecideTakeover, Reason: "lease over"}, nil
	}
	return abi.DecideResponse{Decision: abi.DecideProxy}, nil
}

// haEnv is several managers ("pods") on one MemoryStore (test clock) and
// one transcode directory, with 16 s of 320x180 media in 2 s segments (8:
// no job here reaches the end, which would delete its record).
type haEnv struct {
	store *MemoryStore
	clock *testClock
	dir   string
	req   SegmentRequest
}

type haPod struct {
	m      *Manager
	met    *Metrics
	policy *leasePolicy
}

func newHAEnv(t *testing.T) *haEnv {
	t.Helper()
	media := testmedia.Generate(t, t.TempDir(), testmedia.Options{Seconds: 16, Width: 320, Height: 180})
	info, err := transcode.Probe(media)
	if err != nil {
		t.Fatal(err)
	}
	vs := transcode.Ladder(info, []transcode.Rung{{Name: "180p", Height: 180, VideoBitrate: 300_000, AudioBitrate: 64_000}}, 2, "ultrafast")
	store, clk := newTestStore()
	return &haEnv{store: store, clock: clk, dir: t.TempDir(),
		req: SegmentRequest{Item: "item-0123456789ab", ItemPath: media, Info: info, Session: "sessionA", Variant: vs[0]}}
}

func (e *haEnv) pod(t *testing.T, name string) *haPod {
	t.Helper()
	p := &haPod{met: NewMetrics(nil), policy: &leasePolicy{}}
	p.m = NewManager(ManagerConfig{Pod: name, AdvertiseURL: "http://" + name, TranscodeDir: e.dir,
		Lease: 10 * time.Second, RenewEvery: 3 * time.Second, AheadSegments: 1, MaxJobs: 2, IdleTimeout: time.Minute},
		e.store, p.policy, slog.New(slog.NewTextHandler(io.Discard, nil)), p.met)
	t.Cleanup(func() { p.close(t) })
	return p
}

func (p *haPod) close(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.m.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func (e *haEnv) get(t *testing.T, p *haPod, n int) (SegmentResult, error) {
	t.Helper()
	r := e.req
	r.N = n
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return p.m.Segment(ctx, r)
}

func (e *haEnv) record(t *testing.T) abi.JobRecord {
	t.Helper()
	rec, err := e.store.Get(context.Background(), jobID(e.req.Session, e.req.Variant.Name))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A request on a non-owner is served from the file when it exists, proxied
// to the owner while its lease is valid, and taken over at once (epoch+1)
// when the owner released the job on shutdown.
func TestNonOwnerProxiesThenTakesOverReleasedJob(t *testing.T) {
	e := newHAEnv(t)
	a, b := e.pod(t, "pod-a"), e.pod(t, "pod-b")
	if _, err := e.get(t, a, 0); err != nil {
		t.Fatal(err)
	}
	// pod-a made 0 and 1 and waits at 2 (ahead 1): 3 does not exist.
	res, err := e.get(t, b, 3)
	if err != nil || res.ProxyTo != "http://pod-a" {
		t.Fatalf("segment 3 on pod-b: %+v, %v; want a proxy to http://pod-a", res, err)
	}
	if got := metricValue(t, b.met.Proxied); got != 1 {
		t.Errorf("wasmhls_proxied_requests_total = %v, want 1", got)
	}
	// An existing file needs neither the owner nor the policy.
	calls := b.policy.calls
	if res, err := e.get(t, b, 0); err != nil || res.Path == "" {
		t.Fatalf("segment 0 on pod-b: %+v, %v; want the file", res, err)
	}
	if b.policy.calls != calls {
		t.Error("an existing segment asked the takeover policy")
	}

	a.close(t) // drain: the job is released
	if rec := e.record(t); rec.State != abi.StateReleased || rec.Owner != "pod-a" {
		t.Fatalf("record after pod-a closed: %+v", rec)
	}
	res, err = e.get(t, b, 3)
	if err != nil || res.Path == "" {
		t.Fatalf("segment 3 on pod-b after the release: %+v, %v", res, err)
	}
	rec := e.record(t)
	if rec.Owner != "pod-b" || rec.Epoch != 2 || rec.OwnerURL != "http://pod-b" || rec.State != abi.StateActive {
		t.Errorf("record after the takeover: %+v; want pod-b at epoch 2", rec)
	}
	if got := metricValue(t, b.met.Takeovers.WithLabelValues(takeoverReleased)); got != 1 {
		t.Errorf(`wasmhls_takeovers_total{reason="released"} = %v, want 1`, got)
	}
}

// An expired lease is taken over; the old owner's job is fenced (it
// publishes nothing more) and its next request goes to the new owner.
func TestExpiredLeaseTakenOverAndOldOwnerFenced(t *testing.T) {
	e := newHAEnv(t)
	a, b := e.pod(t, "pod-a"), e.pod(t, "pod-b")
	if _, err := e.get(t, a, 0); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(11 * time.Second) // past the 10 s lease on the store's clock
	if res, err := e.get(t, b, 3); err != nil || res.Path == "" {
		t.Fatalf("segment 3 on pod-b after expiry: %+v, %v", res, err)
	}
	if got := metricValue(t, b.met.Takeovers.WithLabelValues(takeoverExpired)); got != 1 {
		t.Errorf(`wasmhls_takeovers_total{reason="expired"} = %v, want 1`, got)
	}
	// pod-a's job wakes for segment 2, its commit is refused (epoch 1 is
	// fenced), and the request is then proxied to pod-b, or served from the
	// file pod-b made meanwhile.
	res, err := e.get(t, a, 2)
	if err != nil || (res.ProxyTo != "http://pod-b" && res.Path == "") {
		t.Fatalf("segment 2 on the fenced pod-a: %+v, %v; want a proxy to pod-b or the file", res, err)
	}
	if rec := e.record(t); rec.Owner != "pod-b" || rec.Epoch != 2 {
		t.Errorf("record: %+v; want pod-b at epoch 2", rec)
	}
}

// A policy error never leads to a takeover: the request fails safe.
func TestPolicyErrorFailsSafe(t *testing.T) {
	e := newHAEnv(t)
	a, b := e.pod(t, "pod-a"), e.pod(t, "pod-b")
	if _, err := e.get(t, a, 0); err != nil {
		t.Fatal(err)
	}
	a.close(t)
	b.policy.err = errors.New("plugin trapped")
	if _, err := e.get(t, b, 3); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("segment 3 with a failing policy: %v, want ErrUnavailable", err)
	}
	if rec := e.record(t); rec.Owner != "pod-a" || rec.Epoch != 1 || rec.State != abi.StateReleased {
		t.Errorf("record changed without a policy decision: %+v", rec)
	}
}

// Two pods asking at the same instant for a released job: one takeover,
// one transcoder; both requests get the segment (file or proxy).
func TestConcurrentTakeoverOneWinner(t *testing.T) {
	e := newHAEnv(t)
	a, b, c := e.pod(t, "pod-a"), e.pod(t, "pod-b"), e.pod(t, "pod-c")
	if _, err := e.get(t, a, 0); err != nil {
		t.Fatal(err)
	}
	a.close(t)
	var wg sync.WaitGroup
	results := make([]SegmentResult, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	for i, p := range []*haPod{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = e.get(t, p, 3)
		}()
	}
	close(start)
	wg.Wait()
	for i := range results {
		if errs[i] != nil || (results[i].Path == "" && results[i].ProxyTo == "") {
			t.Errorf("request %d: %+v, %v", i, results[i], errs[i])
		}
	}
	tb := metricValue(t, b.met.Takeovers.WithLabelValues(takeoverReleased))
	tc := metricValue(t, c.met.Takeovers.WithLabelValues(takeoverReleased))
	if tb+tc != 1 {
		t.Errorf("takeovers: pod-b %v, pod-c %v; want exactly one", tb, tc)
	}
	rec := e.record(t)
	if rec.Epoch != 2 || (rec.Owner != "pod-b" && rec.Owner != "pod-c") {
		t.Errorf("record: %+v; want one winner at epoch 2", rec)
	}
	started := metricValue(t, b.met.JobsStarted) + metricValue(t, c.met.JobsStarted)
	if started != 1 {
		t.Errorf("transcoder runs on pod-b and pod-c: %v, want 1", started)
	}
}

// DELETE /api/v1/sessions/{session} on a pod that does not run the job
// deletes its record; the owner's next commit or renew finds it gone and
// its job stops (fenced: it publishes nothing more under that record).
func TestStopSessionOnAnotherPodStopsTheOwner(t *testing.T) {
	e := newHAEnv(t)
	a, b := e.pod(t, "pod-a"), e.pod(t, "pod-b")
	if _, err := e.get(t, a, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if len(a.m.snapshot()) != 1 {
		t.Fatalf("pod-a runs %d jobs, want 1", len(a.m.snapshot()))
	}
	n, err := b.m.StopSession(ctx, e.req.Session)
	if err != nil || n != 1 {
		t.Fatalf("StopSession on pod-b: %d, %v; want 1 job stopped", n, err)
	}
	if _, err := e.store.Get(ctx, jobID(e.req.Session, e.req.Variant.Name)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record after StopSession: %v, want ErrNotFound", err)
	}
	// pod-a learns it at its next commit or renew, whichever comes first.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(a.m.snapshot()) > 0 {
		select {
		case <-ctx.Done():
			t.Fatal("pod-a still runs the job of the deleted record")
		case <-tick.C:
		}
	}
	if got := metricValue(t, a.met.Fenced); got != 1 {
		t.Errorf("wasmhls_fenced_total on pod-a = %v, want 1", got)
	}
}
