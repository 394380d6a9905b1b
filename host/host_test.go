package host

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
)

// testHost makes a Host whose three slots load copies of the test guest
// from a temp dir (so a test can replace a file and reload).
func testHost(t *testing.T, reg prometheus.Registerer) (*Host, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	paths := map[string]string{}
	cfg := config.Default()
	for _, kind := range []string{"store", "takeover", "cleanup"} {
		paths[kind] = filepath.Join(dir, kind+".wasm")
		copyFile(t, buildGuest(t, kind, "1", ""), paths[kind])
	}
	cfg.Plugins.Store = config.PluginSlot{Path: paths["store"]}
	cfg.Plugins.Takeover = config.PluginSlot{Path: paths["takeover"]}
	cfg.Plugins.Cleanup = config.PluginSlot{Path: paths["cleanup"]}
	h, err := New(context.Background(), cfg, Options{Limits: testLimits(), CacheDir: cacheDir, Registerer: reg,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h, paths
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Write a new file and rename, as an operator's deploy would.
	if err := os.WriteFile(to+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}

func infoOf(t *testing.T, h *Host, slot string) PluginInfo {
	t.Helper()
	for _, pi := range h.Plugins(context.Background()).([]PluginInfo) {
		if pi.Slot == slot {
			return pi
		}
	}
	t.Fatalf("no slot %s", slot)
	return PluginInfo{}
}

func TestReloadUnderLoad(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, paths := testHost(t, reg)
	store := h.Store().(*StoreClient)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var calls, failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rec, err := store.Get(context.Background(), "job")
				calls.Add(1)
				if err != nil || rec.ID != "job" {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, errors.New(strings.TrimSpace("get: "+errString(err))))
				}
			}
		}()
	}
	// Alternate two builds of the store guest so half the reloads load a
	// new file (new runtime) and half reload an unchanged one (shared).
	v1, v2 := buildGuest(t, "store", "1", ""), buildGuest(t, "store", "1", "v2")
	for i := range 20 {
		want := "0.0.1"
		if i%4 < 2 {
			copyFile(t, v2, paths["store"])
			want = "0.0.2"
		} else {
			copyFile(t, v1, paths["store"])
		}
		if _, err := h.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if got := infoOf(t, h, "store").Version; got != want {
			t.Fatalf("reload %d: version %s, want %s", i, got, want)
		}
	}
	cancel()
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed during reloads; first: %v", failures.Load(), calls.Load(), firstErr.Load())
	}
	if calls.Load() == 0 {
		t.Fatal("no calls ran")
	}
	pi := infoOf(t, h, "store")
	if pi.Generation != 21 || pi.Calls < uint64(calls.Load()) || pi.Errors != 0 || pi.P50Micros <= 0 ||
		pi.Kind != "store" || pi.Path != paths["store"] || pi.ABI != abi.Version || pi.SHA256 == "" {
		t.Fatalf("plugins info after reloads: %+v", pi)
	}
	if n := gauge(t, reg, "wasmhls_plugin_reloads_total"); n != 60 {
		t.Fatalf("reloads_total = %v, want 60 (20 reloads × 3 slots)", n)
	}

	// A broken file: the reload fails with the reason, the old generation serves.
	copyFile(t, buildGuest(t, "store", "2", ""), paths["store"])
	res, err := h.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "plugins.store") || !strings.Contains(err.Error(), "ABI version 2") {
		t.Fatalf("broken reload: %v", err)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"slot":"store","ok":false,"generation":21`) {
		t.Fatalf("reload result: %s", b)
	}
	if rec, err := store.Get(context.Background(), "job"); err != nil || rec.ID != "job" {
		t.Fatalf("old generation stopped serving: %v", err)
	}
	if got := infoOf(t, h, "store").Generation; got != 21 {
		t.Fatalf("generation = %d after a failed reload", got)
	}
	// The other slots reloaded normally.
	if got := infoOf(t, h, "takeover").Generation; got != 22 {
		t.Fatalf("takeover generation = %d", got)
	}
}

func errString(err error) string {
	if err == nil {
		return "wrong record"
	}
	return err.Error()
}

func TestHostClientsAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, _ := testHost(t, reg)
	ctx := context.Background()
	// The test guest answers neither decide nor plan: the clients must turn
	// that into errors, never a decision or a deletion.
	if d, err := h.Takeover().Decide(ctx, abi.DecideRequest{}); err == nil || d.Decision != "" {
		t.Fatalf("Decide on a guest without decide: %+v, %v", d, err)
	}
	if p, err := h.Cleanup().Plan(ctx, abi.PlanRequest{}); err == nil || len(p.Delete) != 0 {
		t.Fatalf("Plan on a guest without plan: %+v, %v", p, err)
	}
	if _, err := h.Store().Get(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if n := gauge(t, reg, "wasmhls_plugin_calls_total"); n < 3 {
		t.Fatalf("calls_total = %v", n)
	}
	if n := gauge(t, reg, "wasmhls_plugin_instances"); n < 3 {
		t.Fatalf("instances = %v, want ≥ 1 per slot", n)
	}
	if pi := infoOf(t, h, "takeover"); pi.Errors != 1 || pi.Kind != "takeover" {
		t.Fatalf("takeover info: %+v", pi)
	}
}

// fakeCaller answers with fixed JSON so the clients' own checks can be tested.
type fakeCaller struct{ result string }

func (f fakeCaller) Call(_ context.Context, op string, _, resp any) error {
	return json.Unmarshal([]byte(f.result), resp)
}

func TestClientsRefuseUnsafeAnswers(t *testing.T) {
	ctx := context.Background()
	if _, err := NewTakeoverClient(fakeCaller{`{"decision":"TAKEOVER!"}`}).Decide(ctx, abi.DecideRequest{}); !errors.Is(err, ErrPluginFailed) {
		t.Fatalf("unknown decision: %v", err)
	}
	for _, bad := range []string{"/etc", "../x", "a/../../b", `a\b`, "", ".", "a//b"} {
		b, _ := json.Marshal(abi.PlanResponse{Delete: []string{"ok/dir", bad}})
		if p, err := NewCleanupClient(fakeCaller{string(b)}).Plan(ctx, abi.PlanRequest{}); !errors.Is(err, ErrPluginFailed) || len(p.Delete) != 0 {
			t.Errorf("path %q: %+v, %v", bad, p, err)
		}
	}
	p, err := NewCleanupClient(fakeCaller{`{"delete":["item/abc"]}`}).Plan(ctx, abi.PlanRequest{})
	if err != nil || len(p.Delete) != 1 {
		t.Fatalf("good plan: %+v %v", p, err)
	}
}
