package host

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/internal/redistest"
	"github.com/wasmhls/wasmhls/plugins/builtin"
	"github.com/wasmhls/wasmhls/session"
)

// pluginPath is builtin:NAME when `make plugins` embedded it, otherwise a
// file built here from plugins/NAME, so the test always runs the real
// plugin (and the embed path is covered whenever the plugins are built).
func pluginPath(t *testing.T, name string) string {
	t.Helper()
	if _, err := builtin.Open(name); err == nil {
		return builtin.Prefix + name
	} else if !strings.Contains(err.Error(), "run make plugins") {
		t.Fatalf("builtin %s: %v", name, err)
	}
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../plugins/"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plugin %s: %v\n%s", name, err, b)
	}
	return out
}

func TestDefaultPlugins(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Plugins.Store.Path = pluginPath(t, "store-null")
	cfg.Plugins.Takeover.Path = pluginPath(t, "takeover-lease")
	cfg.Plugins.Cleanup.Path = pluginPath(t, "cleanup-lease")
	h, err := New(ctx, cfg, Options{CacheDir: cacheDir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New with the default plugins: %v", err)
	}
	defer h.Close(ctx)

	rec, created, err := h.Store().Create(ctx, abi.JobRecord{ID: "j1", Owner: "pod-a"}, 30*time.Second)
	if err != nil || !created || rec.ID != "j1" {
		t.Fatalf("store-null create: %+v %v %v", rec, created, err)
	}
	now := time.Now().UnixMilli()
	d, err := h.Takeover().Decide(ctx, abi.DecideRequest{Record: abi.JobRecord{ID: "j1", Owner: "pod-a",
		State: abi.StateActive, LeaseExpiresMs: now - 1000}, NowMs: now, Pod: "pod-b"})
	if err != nil || d.Decision != abi.DecideTakeover {
		t.Fatalf("expired lease: %+v %v", d, err)
	}
	d, err = h.Takeover().Decide(ctx, abi.DecideRequest{Record: abi.JobRecord{ID: "j1", Owner: "pod-a",
		State: abi.StateActive, LeaseExpiresMs: now + 60_000}, NowMs: now, Pod: "pod-b"})
	if err != nil || d.Decision == abi.DecideTakeover {
		t.Fatalf("valid lease must not be taken over: %+v %v", d, err)
	}
	plan, err := h.Cleanup().Plan(ctx, abi.PlanRequest{NowMs: now, MaxAgeMs: 1000, Dirs: []abi.CleanupDir{
		{Path: "a/live", ModTimeMs: 0, Referenced: []string{"j1"}, LiveLease: true},
		{Path: "b/old", ModTimeMs: 0},
	}})
	if err != nil || len(plan.Delete) != 1 || plan.Delete[0] != "b/old" {
		t.Fatalf("cleanup plan: %+v %v", plan, err)
	}
	for _, pi := range h.Plugins(ctx).([]PluginInfo) {
		if pi.Name == "" || pi.Version == "" || pi.Generation != 1 {
			t.Errorf("plugin info: %+v", pi)
		}
	}
}

func TestStoreRedisThroughHost(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	client, err := NewRedis(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	path := pluginPath(t, "store-redis")
	slot := config.PluginSlot{Path: path}
	if !strings.HasPrefix(path, builtin.Prefix) {
		slot.Capabilities = []string{"redis"} // a file needs the grant; the builtin has it by default
	}
	p, err := Load(ctx, "store", slot, Options{Redis: client, CacheDir: cacheDir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("load store-redis: %v", err)
	}
	defer p.Close(ctx)
	s := NewStoreClient(p)
	rec, created, err := s.Create(ctx, abi.JobRecord{ID: "job-1", Owner: "pod-a", OwnerURL: "http://a",
		LastCompletedSegment: -1, LastRequestedSegment: -1}, 30*time.Second)
	if err != nil || !created || rec.Epoch < 1 {
		t.Fatalf("create: %+v %v %v", rec, created, err)
	}
	got, err := s.Get(ctx, "job-1")
	if err != nil || got.Owner != "pod-a" || got.Epoch != rec.Epoch {
		t.Fatalf("get: %+v %v", got, err)
	}
	cur, err := s.Takeover(ctx, "job-1", "pod-b", "http://b", 30*time.Second)
	if !errors.Is(err, session.ErrLeaseValid) || cur.Owner != "pod-a" {
		t.Fatalf("takeover of a valid lease: %+v %v", cur, err)
	}
	if _, err := s.Renew(ctx, "job-1", "pod-a", rec.Epoch+5, 30*time.Second, abi.Progress{}); !errors.Is(err, session.ErrLost) {
		t.Fatalf("renew with a wrong epoch: %v", err)
	}
	if err := s.Release(ctx, "job-1", "pod-a", rec.Epoch); err != nil {
		t.Fatal(err)
	}
	taken, err := s.Takeover(ctx, "job-1", "pod-b", "http://b", 30*time.Second)
	if err != nil || taken.Owner != "pod-b" || taken.Epoch != rec.Epoch+1 {
		t.Fatalf("takeover after release: %+v %v", taken, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}
