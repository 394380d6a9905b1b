package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/internal/testmedia"
	"github.com/wasmhls/wasmhls/transcode"
)

type mgrEnv struct {
	m     *Manager
	store *MemoryStore
	clock *testClock
	met   *Metrics
	req   SegmentRequest
}

// newMgr builds a Manager on a MemoryStore (injected clock) with 8 s of
// generated 640x360 media in 2 s segments: 4 segments.
func newMgr(t *testing.T, ahead int) *mgrEnv {
	t.Helper()
	media := testmedia.Generate(t, t.TempDir(), testmedia.Options{Seconds: 8, Width: 640, Height: 360})
	info, err := transcode.Probe(media)
	if err != nil {
		t.Fatal(err)
	}
	vs := transcode.Ladder(info, []transcode.Rung{{Name: "360p", Height: 360, VideoBitrate: 800_000, AudioBitrate: 96_000}}, 2, "ultrafast")
	store, clk := newTestStore()
	met := NewMetrics(nil)
	m := NewManager(ManagerConfig{Pod: "pod-a", AdvertiseURL: "http://a", TranscodeDir: t.TempDir(),
		Lease: 10 * time.Second, RenewEvery: 3 * time.Second, AheadSegments: ahead, MaxJobs: 2, IdleTimeout: time.Minute},
		store, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), met)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &mgrEnv{m: m, store: store, clock: clk, met: met,
		req: SegmentRequest{Item: "item-0123456789ab", ItemPath: media, Info: info, Session: "sessionA", Variant: vs[0]}}
}

func (e *mgrEnv) segment(t *testing.T, session string, n int) (SegmentResult, error) {
	t.Helper()
	r := e.req
	r.Session, r.N = session, n
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return e.m.Segment(ctx, r)
}

func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func TestSegmentRange(t *testing.T) {
	e := newMgr(t, 1)
	for _, n := range []int{-1, 4, 1000} {
		if _, err := e.segment(t, "sessionA", n); !errors.Is(err, ErrSegmentRange) {
			t.Errorf("segment %d: %v, want ErrSegmentRange", n, err)
		}
	}
	if metricValue(t, e.met.JobsStarted) != 0 {
		t.Error("an out-of-range request started a job")
	}
}

func TestLostLeaseStopsTheJobBeforePublishing(t *testing.T) {
	e := newMgr(t, 1)
	res, err := e.segment(t, "sessionA", 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := e.m.SegmentDir(e.req.Item, e.req.Variant)
	id := jobID("sessionA", "360p")
	rec, err := e.store.Get(context.Background(), id)
	if err != nil || rec.Owner != "pod-a" || rec.Epoch != 1 || rec.LastCompletedSegment < 0 {
		t.Fatalf("record after segment 0: %+v, %v", rec, err)
	}
	// The job made 0 and 1 and is paused at 2 (ahead 1). Another pod takes
	// the job over once the lease has expired on the store's clock.
	e.clock.advance(11 * time.Second)
	if _, err := e.store.Takeover(context.Background(), id, "pod-b", "http://b", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Asking for segment 2 wakes the job; its commit is fenced.
	if _, err := e.segment(t, "sessionA", 2); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("segment 2 after losing the lease: %v, want ErrUnavailable", err)
	}
	if _, err := os.Stat(transcode.SegmentPath(dir, 2)); err == nil {
		t.Error("a fenced job published segment 2")
	}
	if metricValue(t, e.met.Fenced) != 1 {
		t.Errorf("wasmhls_fenced_total = %v, want 1", metricValue(t, e.met.Fenced))
	}
	rec, _ = e.store.Get(context.Background(), id)
	if rec.Owner != "pod-b" || rec.Epoch != 2 {
		t.Errorf("the fenced pod changed the record: %+v", rec)
	}
	if _, err := os.Stat(res.Path); err != nil {
		t.Errorf("segment 0 vanished: %v", err)
	}
}

func TestForeignOwnerIsUnavailable(t *testing.T) {
	e := newMgr(t, 1)
	id := jobID("sessionB", "360p")
	if _, _, err := e.store.Create(context.Background(), abi.JobRecord{ID: id, Owner: "pod-b", OwnerURL: "http://b"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_, err := e.segment(t, "sessionB", 1)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "pod-b") {
		t.Fatalf("segment of a job pod-b owns: %v, want ErrUnavailable naming pod-b", err)
	}
	if metricValue(t, e.met.JobsStarted) != 0 {
		t.Error("a job owned by another pod was started here")
	}
	// StopSession removes it from the store, so its owner's next commit fails.
	n, err := e.m.StopSession(context.Background(), "sessionB")
	if err != nil || n != 1 {
		t.Fatalf("StopSession = %d, %v", n, err)
	}
	if _, err := e.store.Get(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("record after StopSession: %v", err)
	}
}

func TestCloseReleasesAndJoins(t *testing.T) {
	e := newMgr(t, 1)
	if _, err := e.segment(t, "sessionA", 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := e.store.Get(context.Background(), jobID("sessionA", "360p"))
	if err != nil || rec.State != abi.StateReleased {
		t.Errorf("record after Close: %+v, %v; want released so another pod may take over at once", rec, err)
	}
	if err := e.m.Ready(); err == nil {
		t.Error("Ready after Close = nil")
	}
	if _, err := e.segment(t, "sessionA", 3); !errors.Is(err, ErrUnavailable) {
		t.Errorf("segment after Close: %v, want ErrUnavailable", err)
	}
	for _, s := range []string{jobStarting, jobRunning, jobPaused} {
		if v := metricValue(t, e.met.Jobs.WithLabelValues(s)); v != 0 {
			t.Errorf("wasmhls_jobs{state=%s} = %v after Close", s, v)
		}
	}
}

func TestSegmentsSkipWhatExists(t *testing.T) {
	e := newMgr(t, 5)
	// Session A makes everything; session B's job finds every file and does no work.
	if _, err := e.segment(t, "sessionA", 0); err != nil {
		t.Fatal(err)
	}
	dir := e.m.SegmentDir(e.req.Item, e.req.Variant)
	for n := 0; n < 4; n++ {
		r, err := e.segment(t, "sessionA", n)
		if err != nil || r.Path != transcode.SegmentPath(dir, n) {
			t.Fatalf("segment %d: %+v, %v", n, r, err)
		}
	}
	before := metricValue(t, e.met.Segments)
	for n := 0; n < 4; n++ {
		if _, err := e.segment(t, "sessionB", n); err != nil {
			t.Fatal(err)
		}
	}
	if after := metricValue(t, e.met.Segments); after != before || before != 4 {
		t.Errorf("segments published: %v then %v; want 4 and no more", before, after)
	}
}

// The renew worker holds a lease for each job; losing it stops the job at
// once and leaves the record to its new owner.
func TestLostLeaseStopsAPausedJob(t *testing.T) {
	e := newMgr(t, 1)
	if _, err := e.segment(t, "sessionA", 0); err != nil {
		t.Fatal(err)
	}
	owned := e.m.ownedJobs()
	if len(owned) != 1 || len(e.m.renew.Leases()) != 1 {
		t.Fatalf("ownedJobs = %d, leases = %d, want 1 and 1", len(owned), len(e.m.renew.Leases()))
	}
	j := owned[0]
	l := e.m.renew.Leases()[0]
	id := jobID("sessionA", "360p")
	// Progress reaches the lease, so the next renew carries it.
	deadline := time.Now().Add(time.Minute)
	for l.Progress().LastCompletedSegment != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("lease progress %+v, want segment 1 completed", l.Progress())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p := l.Progress(); l.ID != id || l.Epoch != 1 || p.LastRequestedSegment != 0 || p.LastDurableOffsetMs != 4000 {
		t.Fatalf("lease %s epoch %d progress %+v", l.ID, l.Epoch, p)
	}
	// What the renew worker does when the store says lost.
	l.fence(fmt.Errorf("renew job %s: %w", id, ErrLost))
	<-j.done
	if len(e.m.ownedJobs()) != 0 || len(e.m.renew.Leases()) != 0 {
		t.Error("a fenced job is still listed")
	}
	rec, err := e.store.Get(context.Background(), id)
	if err != nil || rec.Owner != "pod-a" || rec.State != abi.StateActive {
		t.Errorf("a fenced job touched its record: %+v, %v", rec, err)
	}
	if metricValue(t, e.met.Fenced) != 1 {
		t.Errorf("wasmhls_fenced_total = %v, want 1", metricValue(t, e.met.Fenced))
	}
	if _, err := os.Stat(transcode.SegmentPath(e.m.SegmentDir(e.req.Item, e.req.Variant), 2)); err == nil {
		t.Error("segment 2 was published although the job was paused at it and then fenced")
	}
}

// Two sessions on one variant run two jobs over one segment directory; each
// segment is still produced exactly once (the second job waits for the
// first one's segment instead of writing the same n.ts.tmp).
func TestTwoSessionsProduceEachSegmentOnce(t *testing.T) {
	e := newMgr(t, 5)
	var mu sync.Mutex
	var runErrs []error
	e.m.run = func(ctx context.Context, spec transcode.JobSpec) error {
		err := transcode.Run(ctx, spec)
		mu.Lock()
		runErrs = append(runErrs, err)
		mu.Unlock()
		return err
	}
	errs := make(chan error, 2)
	for _, s := range []string{"sessionA", "sessionB"} {
		go func(s string) { _, err := e.segment(t, s, 0); errs <- err }(s)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Both jobs run to the end of the item (ahead 5 > 4 segments) and end.
	deadline := time.Now().Add(2 * time.Minute)
	for len(e.m.snapshot()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("jobs still running: %d", len(e.m.snapshot()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := metricValue(t, e.met.Segments); got != 4 {
		t.Errorf("segments published: %v, want each of the 4 once", got)
	}
	if got := metricValue(t, e.met.JobsStarted); got != 2 {
		t.Errorf("transcoder runs: %v, want one per session", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range runErrs {
		if err != nil && !errors.Is(err, transcode.ErrDone) {
			t.Errorf("a run failed: %v", err)
		}
	}
}

// A request the running job will reach within ahead_segments waits for it:
// no restart, one transcoder run for the whole item.
func TestRequestWithinAheadJoinsTheRunningJob(t *testing.T) {
	e := newMgr(t, 1)
	for _, n := range []int{0, 2, 3, 1} { // 2: the job is paused there; 3: one past it
		if _, err := e.segment(t, "sessionA", n); err != nil {
			t.Fatalf("segment %d: %v", n, err)
		}
	}
	if got := metricValue(t, e.met.JobsStarted); got != 1 {
		t.Errorf("transcoder runs: %v, want 1 (no request was a seek)", got)
	}
	if got := metricValue(t, e.met.Segments); got != 4 {
		t.Errorf("segments published: %v, want 4", got)
	}
}
