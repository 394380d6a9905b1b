package session_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/host"
	"github.com/wasmhls/wasmhls/internal/redistest"
	"github.com/wasmhls/wasmhls/session"
)

// The renew worker and the cleanup worker against the real thing: a
// redis-server, the built-in store-redis and cleanup-lease plugins, loaded
// by the plugin host as the server loads them.

// redisHost loads the built-in plugins with store-redis on a fresh
// redis-server. It skips while the built-in plugins are not compiled.
func redisHost(t *testing.T) (*host.Host, *redistest.Server) {
	t.Helper()
	for _, name := range []string{"store-redis", "takeover-lease", "cleanup-lease"} {
		if _, err := os.Stat(filepath.Join("..", "plugins", "builtin", "wasm", name+".wasm")); err != nil {
			t.Skipf("built-in plugin %s not compiled (run make plugins): %v", name, err)
		}
	}
	rs := redistest.Start(t)
	cfg := config.Default()
	cfg.Redis.URL = rs.URL()
	cfg.Plugins.Store.Path = "builtin:store-redis"
	ctx := context.Background()
	h, err := host.New(ctx, cfg, host.Options{Redis: rs.Client(), CacheDir: wazeroCacheDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("load the built-in plugins on store-redis: %v", err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, rs
}

// wazeroCacheDir is a compilation cache kept across runs (wazero keys it by
// module hash, wazero version and runtime options, so reuse is safe): the
// built-in plugins take tens of seconds to compile under -race on 2 cores.
func wazeroCacheDir() string {
	if uc, err := os.UserCacheDir(); err == nil {
		return filepath.Join(uc, "wasmhls", "session-test-wazero-cache")
	}
	return "" // in-memory
}

// monoClock is the renew worker's injected monotonic clock.
type monoClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *monoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *monoClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRenewWorkerOnStoreRedis(t *testing.T) {
	h, rs := redisHost(t)
	store := h.Store()
	ctx := context.Background()
	clock := &monoClock{now: time.Unix(1000, 0)}
	const lease, every = 2 * time.Second, 500 * time.Millisecond
	w := session.NewRenewWorker(store, session.RenewConfig{Pod: "pod-a", Lease: lease, Every: every, Now: clock.Now}, nil)

	create := func(id string, lease time.Duration) *session.Lease {
		t.Helper()
		sent := clock.Now()
		rec, created, err := store.Create(ctx, abi.JobRecord{ID: id, Item: "item", Variant: "360p", Owner: "pod-a",
			OwnerURL: "http://a", SegmentPrefix: "item/h", LastCompletedSegment: -1, LastRequestedSegment: -1}, lease)
		if err != nil || !created {
			t.Fatalf("create %s: %v %v", id, created, err)
		}
		return w.AddSent(id, rec.Epoch, abi.Progress{LastCompletedSegment: -1, LastRequestedSegment: -1}, sent)
	}
	kept := create("s1:360p", lease)
	taken := create("s2:360p", 200*time.Millisecond)

	// s2's short lease expires (Redis's clock); pod-b takes it over.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := store.Takeover(ctx, "s2:360p", "pod-b", "http://b", lease)
		if err == nil {
			if rec.Epoch != 2 {
				t.Fatalf("takeover epoch %d, want 2", rec.Epoch)
			}
			break
		}
		if !errors.Is(err, session.ErrLeaseValid) || time.Now().After(deadline) {
			t.Fatalf("takeover of the expired job: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling Redis's clock past the lease end
	}

	kept.SetProgress(abi.Progress{LastCompletedSegment: 3, LastRequestedSegment: 4, LastDurableOffsetMs: 8000})
	w.RenewOnce(ctx)
	if err := kept.CheckWrite(); err != nil {
		t.Fatalf("kept job after a good renew: %v", err)
	}
	if err := taken.CheckWrite(); !errors.Is(err, session.ErrLost) {
		t.Fatalf("taken-over job: CheckWrite = %v, want ErrLost", err)
	}
	rec, err := store.Get(ctx, "s1:360p")
	if err != nil || rec.LastCompletedSegment != 3 || rec.LastRequestedSegment != 4 || rec.LastDurableOffsetMs != 8000 {
		t.Fatalf("progress in Redis: %+v %v", rec, err)
	}
	if kept.ExpiresMs() != rec.LeaseExpiresMs {
		t.Errorf("lease expiry: worker %d, Redis %d", kept.ExpiresMs(), rec.LeaseExpiresMs)
	}

	// Redis dies: renews fail, the pod reports degraded, writes go on until
	// the deadline and stop after it.
	rs.Kill()
	clock.Advance(every)
	w.RenewOnce(ctx)
	if err := w.Degraded(); err == nil || errors.Is(err, session.ErrLost) {
		t.Fatalf("Degraded with Redis down = %v, want a store error", err)
	}
	if err := kept.CheckWrite(); err != nil {
		t.Fatalf("CheckWrite within the deadline: %v", err)
	}
	clock.Advance(lease - every) // past the deadline (lease − every) since the last good send
	if err := kept.CheckWrite(); !errors.Is(err, session.ErrFenced) {
		t.Fatalf("CheckWrite past the deadline = %v, want ErrFenced", err)
	}

	// Redis returns empty (no persistence): the record is gone, the job is
	// lost for good and the Manager re-creates it on the next request.
	// (store-redis answers lost for a missing record, as the protocol's
	// renew allows; the worker treats not_found the same way.)
	rs.Restart()
	w.RenewOnce(ctx)
	select {
	case <-kept.Fenced():
	default:
		t.Fatalf("job still held after Redis came back empty (err %v)", kept.Err())
	}
	if err := kept.Err(); !errors.Is(err, session.ErrLost) {
		t.Fatalf("Err = %v, want ErrLost", err)
	}
	if err := w.Degraded(); err != nil {
		t.Errorf("Degraded = %v once Redis answers again", err)
	}
}

func TestCleanupWorkerOnStoreRedisAndCleanupLease(t *testing.T) {
	h, rs := redisHost(t)
	store := h.Store()
	ctx := context.Background()
	root := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	write := func(rel string, mtime time.Time) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("ts"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write("live/hashA/0.ts", old)
	write("dead/hashB/0.ts", old)
	write("orphan/hashD/0.ts", old)
	write("fresh/hashC/0.ts", time.Now().Add(time.Hour)) // stays younger than max_age

	mk := func(id, item, hash string, lease time.Duration) {
		t.Helper()
		if _, _, err := store.Create(ctx, abi.JobRecord{ID: id, Item: item, ParamsHash: hash, Owner: "pod-b",
			SegmentPrefix: item + "/" + hash, LastCompletedSegment: -1, LastRequestedSegment: -1}, lease); err != nil {
			t.Fatal(err)
		}
	}
	mk("live:360p", "live", "hashA", time.Minute)
	mk("dead:360p", "dead", "hashB", 50*time.Millisecond)
	// The dead job's record was last updated at its creation: its directory
	// counts as used then. With max_age 1 s, wait (Redis's clock) until that
	// is past, and past the lease.
	const maxAge = time.Second
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := store.Get(ctx, "dead:360p")
		if err != nil {
			t.Fatal(err)
		}
		if rec.NowMs > rec.LeaseExpiresMs && rec.NowMs > rec.UpdatedMs+maxAge.Milliseconds() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead:360p not old enough by Redis's clock: %+v", rec)
		}
		time.Sleep(50 * time.Millisecond) // polling Redis's clock
	}

	newWorker := func(pod string) *session.CleanupWorker {
		return session.NewCleanupWorker(session.CleanupConfig{Pod: pod, TranscodeDir: root, Interval: time.Minute,
			MaxAge: maxAge}, store, h.Cleanup(), nil, nil)
	}
	a, b := newWorker("pod-a"), newWorker("pod-b")
	rep, err := a.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Deleted)
	if want := []string{"dead/hashB", "orphan/hashD"}; !slices.Equal(rep.Deleted, want) {
		t.Fatalf("deleted %v, want %v (proposed %v, refused %v)", rep.Deleted, want, rep.Proposed, rep.Refused)
	}
	for _, keep := range []string{"live/hashA/0.ts", "fresh/hashC/0.ts"} {
		if _, err := os.Stat(filepath.Join(root, keep)); err != nil {
			t.Errorf("%s: %v", keep, err)
		}
	}

	// pod-a holds the lock (for the interval): pod-b does not sweep.
	write("orphan2/hashE/0.ts", old)
	if rep, err := b.Sweep(ctx); err != nil || rep.Locked {
		t.Fatalf("pod-b swept while pod-a holds the lock: %+v %v", rep, err)
	}
	// Redis down: pod-a deletes nothing.
	rs.Kill()
	if rep, err := a.Sweep(ctx); err == nil || len(rep.Deleted) != 0 {
		t.Fatalf("sweep with Redis down: %+v, err %v; want an error and no deletion", rep, err)
	} else if !strings.Contains(err.Error(), "cleanup") {
		t.Errorf("error does not say what failed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "orphan2/hashE/0.ts")); err != nil {
		t.Errorf("deleted with Redis down: %v", err)
	}
}
