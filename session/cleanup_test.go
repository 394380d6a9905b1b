package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmhls/wasmhls/abi"
)

// cleanupTestRules is a CleanupRules whose answer the test chooses; it
// records every request. The real rules are the cleanup-lease plugin.
type cleanupTestRules struct {
	mu   sync.Mutex
	reqs []abi.PlanRequest
	plan func(req abi.PlanRequest) (abi.PlanResponse, error)
}

func (r *cleanupTestRules) Plan(_ context.Context, req abi.PlanRequest) (abi.PlanResponse, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.plan(req)
}

func (r *cleanupTestRules) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// proposeAll answers with fixed paths, whatever the request says.
func proposeAll(paths ...string) func(abi.PlanRequest) (abi.PlanResponse, error) {
	return func(abi.PlanRequest) (abi.PlanResponse, error) { return abi.PlanResponse{Delete: paths}, nil }
}

// ageRules is what a well-behaved plugin does: delete unleased
// directories not written for max_age.
func ageRules(req abi.PlanRequest) (abi.PlanResponse, error) {
	var out abi.PlanResponse
	for _, d := range req.Dirs {
		if !d.LiveLease && req.NowMs-d.AccessMs > req.MaxAgeMs {
			out.Delete = append(out.Delete, d.Path)
		}
	}
	return out, nil
}

const (
	testMaxAge = 5 * time.Minute
	testTmpAge = 10 * time.Minute
)

type cleanupFixture struct {
	clock   *renewTestClock
	store   *leaseTestStore
	root    string // transcode_dir
	outside string // a directory next to transcode_dir that must survive
	rules   *cleanupTestRules
	worker  *CleanupWorker
}

// newCleanupFixture lays out transcode_dir:
//
//	live/hashA      job "live-job", valid lease, files 1 h old
//	old/hashB       job "expired-job", lease expired 10 min ago, files 1 h old
//	fresh/hashC     no job, written 1 min ago
//	orphan/hashD    no job, files 1 h old
//
// and ../outside/keep.ts next to it.
func newCleanupFixture(t *testing.T) *cleanupFixture {
	t.Helper()
	c := newRenewTestClock()
	base := t.TempDir()
	f := &cleanupFixture{
		clock:   c,
		store:   newLeaseTestStore(c),
		root:    filepath.Join(base, "transcode"),
		outside: filepath.Join(base, "outside"),
		rules:   &cleanupTestRules{plan: ageRules},
	}
	ctx := context.Background()
	// The expired job: created, then its owner vanished 10 minutes ago.
	f.createJob(t, abi.JobRecord{ID: "expired-job", Item: "old", ParamsHash: "hashB", Owner: "pod-z",
		SegmentPrefix: "old/hashB/", ManifestPath: "old/hashB/index.m3u8"}, time.Second)
	c.Advance(10 * time.Minute)
	// The live job, owned by another pod; its paths are absolute.
	f.createJob(t, abi.JobRecord{ID: "live-job", Item: "live", ParamsHash: "hashA", Owner: "pod-b",
		SegmentPrefix: filepath.Join(f.root, "live", "hashA") + "/"}, time.Minute)

	hourAgo := c.Now().Add(-time.Hour)
	f.writeFile(t, filepath.Join(f.root, "live/hashA/0.ts"), hourAgo)
	f.writeFile(t, filepath.Join(f.root, "old/hashB/0.ts"), hourAgo)
	f.writeFile(t, filepath.Join(f.root, "old/hashB/1.ts"), hourAgo)
	f.writeFile(t, filepath.Join(f.root, "fresh/hashC/0.ts"), c.Now().Add(-time.Minute))
	f.writeFile(t, filepath.Join(f.root, "orphan/hashD/0.ts"), hourAgo)
	f.writeFile(t, filepath.Join(f.outside, "keep.ts"), hourAgo)
	f.worker = f.newWorker("pod-a", prometheus.NewRegistry())
	_ = ctx
	return f
}

func (f *cleanupFixture) newWorker(pod string, reg prometheus.Registerer) *CleanupWorker {
	return NewCleanupWorker(CleanupConfig{
		Pod: pod, TranscodeDir: f.root, Interval: time.Minute, MaxAge: testMaxAge,
		TmpMaxAge: testTmpAge, Now: f.clock.Now,
	}, f.store, f.rules, nil, reg)
}

func (f *cleanupFixture) createJob(t *testing.T, rec abi.JobRecord, lease time.Duration) {
	t.Helper()
	if _, created, err := f.store.Create(context.Background(), rec, lease); err != nil || !created {
		t.Fatalf("create %s: created=%v err=%v", rec.ID, created, err)
	}
}

func (f *cleanupFixture) writeFile(t *testing.T, p string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("segment bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func (f *cleanupFixture) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(f.root, filepath.FromSlash(rel)))
	return err == nil
}

func (f *cleanupFixture) mustExist(t *testing.T, rels ...string) {
	t.Helper()
	for _, rel := range rels {
		if !f.exists(rel) {
			t.Errorf("%s was deleted", rel)
		}
	}
	if _, err := os.Stat(filepath.Join(f.outside, "keep.ts")); err != nil {
		t.Errorf("file outside transcode_dir deleted: %v", err)
	}
}

func refusedReason(rep SweepReport, p string) string {
	for _, r := range rep.Refused {
		if r.Path == p {
			return r.Reason
		}
	}
	return ""
}

func TestCleanupDeletesExpiredJobDirPastMaxAge(t *testing.T) {
	f := newCleanupFixture(t)
	rep, err := f.worker.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Locked || rep.Dirs != 4 {
		t.Fatalf("report: locked=%v dirs=%d, want true/4", rep.Locked, rep.Dirs)
	}
	slices.Sort(rep.Deleted)
	if want := []string{"old/hashB", "orphan/hashD"}; !slices.Equal(rep.Deleted, want) {
		t.Fatalf("deleted %v, want %v (refused %v)", rep.Deleted, want, rep.Refused)
	}
	if f.exists("old") || f.exists("orphan") {
		t.Error("emptied item directories were left behind")
	}
	f.mustExist(t, "live/hashA/0.ts", "fresh/hashC/0.ts")
	if rep.FreedBytes != 3*int64(len("segment bytes")) {
		t.Errorf("freed %d bytes", rep.FreedBytes)
	}

	// What the plugin was told: the store's clock, the live job's lease,
	// the expired job's reference.
	req := f.rules.reqs[0]
	if req.NowMs != f.clock.Now().UnixMilli() || req.MaxAgeMs != testMaxAge.Milliseconds() {
		t.Errorf("plan request now=%d max_age=%d", req.NowMs, req.MaxAgeMs)
	}
	dirs := map[string]abi.CleanupDir{}
	for _, d := range req.Dirs {
		dirs[d.Path] = d
	}
	if d := dirs["live/hashA"]; !d.LiveLease || !slices.Equal(d.Referenced, []string{"live-job"}) {
		t.Errorf("live dir: %+v", d)
	}
	if d := dirs["old/hashB"]; d.LiveLease || !slices.Equal(d.Referenced, []string{"expired-job"}) {
		t.Errorf("expired dir: %+v", d)
	}
	if got := counterValue(t, f.worker.metrics.deleted); got != 2 {
		t.Errorf("cleanup_deleted_total = %v, want 2", got)
	}
	if got := counterValue(t, f.worker.metrics.sweeps.WithLabelValues("ok")); got != 1 {
		t.Errorf("cleanup_sweeps_total{ok} = %v, want 1", got)
	}
}

func TestCleanupRefusesUnsafeProposals(t *testing.T) {
	f := newCleanupFixture(t)
	// A link to the outside, at item and at hash level.
	if err := os.Symlink(f.outside, filepath.Join(f.root, "linkitem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.outside, filepath.Join(f.root, "fresh", "linkhash")); err != nil {
		t.Fatal(err)
	}
	// A live job known only by item and params hash.
	f.createJob(t, abi.JobRecord{ID: "hash-only", Item: "orphan", ParamsHash: "hashD", Owner: "pod-c"}, time.Minute)

	bad := map[string]string{
		"../outside":                       "..",
		"live/../../outside":               "..",
		f.outside:                          "absolute",
		filepath.Join(f.root, "old/hashB"): "absolute",
		"live/hashA":                       "live-job",
		"orphan/hashD":                     "hash-only",
		"live":                             "want exactly item/hash",
		"live/hashA/0.ts":                  "want exactly item/hash",
		"./old/hashB":                      "not clean",
		"old//hashB":                       "not clean",
		"linkitem/x":                       "not a segment directory",
		"fresh/linkhash":                   "not a segment directory",
		"nosuch/dir":                       "not a segment directory",
		"":                                 "empty",
		`old\hashB`:                        "backslash",
	}
	var proposals []string
	for p := range bad {
		proposals = append(proposals, p)
	}
	f.rules.plan = proposeAll(proposals...)

	rep, err := f.worker.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 0 {
		t.Fatalf("deleted %v", rep.Deleted)
	}
	for p, want := range bad {
		if r := refusedReason(rep, p); !strings.Contains(r, want) {
			t.Errorf("proposal %q: refusal %q, want it to mention %q", p, r, want)
		}
	}
	f.mustExist(t, "live/hashA/0.ts", "old/hashB/0.ts", "fresh/hashC/0.ts", "orphan/hashD/0.ts", "fresh/linkhash", "linkitem")
	if got := counterValue(t, f.worker.metrics.refused); got != float64(len(bad)) {
		t.Errorf("refused_total = %v, want %d", got, len(bad))
	}
}

func TestCleanupLockHeldByAnotherPod(t *testing.T) {
	f := newCleanupFixture(t)
	ctx := context.Background()
	other := f.newWorker("pod-b", prometheus.NewRegistry())
	rep, err := other.Sweep(ctx) // pod-b sweeps and holds the lock for a minute
	if err != nil || !rep.Locked {
		t.Fatalf("pod-b sweep: locked=%v err=%v", rep.Locked, err)
	}
	f.writeFile(t, filepath.Join(f.root, "orphan2/hashE/0.ts"), f.clock.Now().Add(-time.Hour))
	calls := f.rules.calls()

	rep, err = f.worker.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Locked || len(rep.Deleted) != 0 || f.rules.calls() != calls {
		t.Fatalf("pod-a swept while pod-b held the lock: %+v", rep)
	}
	f.mustExist(t, "orphan2/hashE/0.ts")
	if got := counterValue(t, f.worker.metrics.sweeps.WithLabelValues("locked")); got != 1 {
		t.Errorf("sweeps{locked} = %v", got)
	}

	// Once pod-b's lock has expired, pod-a sweeps.
	f.clock.Advance(time.Minute + time.Millisecond)
	rep, err = f.worker.Sweep(ctx)
	if err != nil || !rep.Locked || !slices.Contains(rep.Deleted, "orphan2/hashE") {
		t.Fatalf("pod-a after the lock expired: %+v err=%v", rep, err)
	}
}

func TestCleanupStoreErrorDeletesNothing(t *testing.T) {
	f := newCleanupFixture(t)
	f.writeFile(t, filepath.Join(f.root, "old/hashB/2.ts.tmp"), f.clock.Now().Add(-time.Hour))
	f.rules.plan = proposeAll("old/hashB", "orphan/hashD")

	t.Run("lock", func(t *testing.T) {
		f.store.setDown(errStoreDown)
		defer f.store.setDown(nil)
		if _, err := f.worker.Sweep(context.Background()); !errors.Is(err, errStoreDown) {
			t.Fatalf("Sweep = %v, want the store error", err)
		}
	})
	t.Run("first list", func(t *testing.T) {
		f.store.listHook = func(n int) { f.store.setDown(errStoreDown) }
		defer func() { f.store.listHook = nil; f.store.setDown(nil) }()
		rep, err := f.worker.Sweep(context.Background())
		if !errors.Is(err, errStoreDown) || len(rep.Deleted)+len(rep.TmpRemoved) != 0 {
			t.Fatalf("Sweep = %+v, %v; want the store error and no deletion", rep, err)
		}
	})
	t.Run("second list", func(t *testing.T) {
		f.store.mu.Lock()
		first := f.store.lists + 1
		f.store.mu.Unlock()
		f.store.listHook = func(n int) {
			if n > first {
				f.store.setDown(errStoreDown)
			}
		}
		defer func() { f.store.listHook = nil; f.store.setDown(nil) }()
		rep, err := f.worker.Sweep(context.Background())
		if !errors.Is(err, errStoreDown) || len(rep.Deleted)+len(rep.TmpRemoved) != 0 {
			t.Fatalf("Sweep = %+v, %v; want the store error and no deletion", rep, err)
		}
	})
	if f.rules.calls() != 1 {
		t.Errorf("plugin asked %d times, want once (only the sweep whose first read worked)", f.rules.calls())
	}
	f.mustExist(t, "old/hashB/0.ts", "old/hashB/2.ts.tmp", "orphan/hashD/0.ts")
	if got := counterValue(t, f.worker.metrics.sweeps.WithLabelValues("store_error")); got != 3 {
		t.Errorf("sweeps{store_error} = %v, want 3", got)
	}
}

// A job created (or taken over) between the first read and the deletion
// keeps its directory: the store is read again before anything is removed.
func TestCleanupRereadsStoreBeforeDeleting(t *testing.T) {
	f := newCleanupFixture(t)
	f.rules.plan = func(req abi.PlanRequest) (abi.PlanResponse, error) {
		f.createJob(t, abi.JobRecord{ID: "new-job", Item: "orphan", Owner: "pod-c",
			ManifestPath: "orphan/hashD/index.m3u8"}, time.Minute)
		return abi.PlanResponse{Delete: []string{"orphan/hashD"}}, nil
	}
	rep, err := f.worker.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := refusedReason(rep, "orphan/hashD"); !strings.Contains(r, "new-job") {
		t.Fatalf("refusal %q, want the new job named (report %+v)", r, rep)
	}
	f.mustExist(t, "orphan/hashD/0.ts")
}

func TestCleanupSkipsDirWrittenSinceScan(t *testing.T) {
	f := newCleanupFixture(t)
	f.rules.plan = func(req abi.PlanRequest) (abi.PlanResponse, error) {
		f.writeFile(t, filepath.Join(f.root, "orphan/hashD/1.ts"), f.clock.Now())
		return abi.PlanResponse{Delete: []string{"orphan/hashD"}}, nil
	}
	rep, err := f.worker.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := refusedReason(rep, "orphan/hashD"); !strings.Contains(r, "written since the scan") {
		t.Fatalf("refusal %q (report %+v)", r, rep)
	}
	f.mustExist(t, "orphan/hashD/0.ts", "orphan/hashD/1.ts")
}

func TestCleanupRemovesDeadWritersTmpEvenIfPluginFails(t *testing.T) {
	f := newCleanupFixture(t)
	now := f.clock.Now()
	f.writeFile(t, filepath.Join(f.root, "live/hashA/1.ts.tmp"), now.Add(-testTmpAge-time.Second)) // dead writer
	f.writeFile(t, filepath.Join(f.root, "live/hashA/2.ts.tmp"), now.Add(-time.Second))            // live writer
	f.rules.plan = func(abi.PlanRequest) (abi.PlanResponse, error) {
		return abi.PlanResponse{Delete: []string{"orphan/hashD"}}, errors.New("plugin trapped")
	}
	rep, err := f.worker.Sweep(context.Background())
	if err == nil || !strings.Contains(err.Error(), "plugin trapped") {
		t.Fatalf("Sweep err = %v, want the plugin error", err)
	}
	if len(rep.Deleted) != 0 {
		t.Fatalf("deleted %v after a plugin error", rep.Deleted)
	}
	if !slices.Equal(rep.TmpRemoved, []string{"live/hashA/1.ts.tmp"}) {
		t.Fatalf("tmp removed %v", rep.TmpRemoved)
	}
	if f.exists("live/hashA/1.ts.tmp") {
		t.Error("dead writer's tmp file still there")
	}
	f.mustExist(t, "live/hashA/2.ts.tmp", "orphan/hashD/0.ts")
	if got := counterValue(t, f.worker.metrics.sweeps.WithLabelValues("plugin_error")); got != 1 {
		t.Errorf("sweeps{plugin_error} = %v", got)
	}
}

func TestCleanupMissingTranscodeDirIsEmpty(t *testing.T) {
	f := newCleanupFixture(t)
	if err := os.RemoveAll(f.root); err != nil {
		t.Fatal(err)
	}
	rep, err := f.worker.Sweep(context.Background())
	if err != nil || rep.Dirs != 0 {
		t.Fatalf("Sweep = %+v, %v", rep, err)
	}
}

// With the Manager's Metrics both workers feed them, on one registry,
// without a registration clash.
func TestWorkersFeedSharedMetrics(t *testing.T) {
	f := newCleanupFixture(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cw := NewCleanupWorker(CleanupConfig{Pod: "pod-a", TranscodeDir: f.root, Interval: time.Minute,
		MaxAge: testMaxAge, Now: f.clock.Now, Metrics: m}, f.store, f.rules, nil, reg)
	rw := NewRenewWorker(f.store, RenewConfig{Pod: "pod-b", Lease: time.Minute, Every: time.Second,
		Now: f.clock.Now, Metrics: m, Registerer: reg}, nil)
	rw.Add("live-job", 1, abi.Progress{})
	rw.RenewOnce(context.Background())
	if _, err := cw.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, m.LeaseRenewals.WithLabelValues("ok")); got != 1 {
		t.Errorf("shared LeaseRenewals{ok} = %v, want 1", got)
	}
	if got := counterValue(t, m.CleanupSweeps.WithLabelValues("ok")); got != 1 {
		t.Errorf("shared CleanupSweeps{ok} = %v, want 1", got)
	}
	if got := counterValue(t, m.CleanupDeleted); got != 2 {
		t.Errorf("shared CleanupDeleted = %v, want 2", got)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}
