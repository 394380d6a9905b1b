package host

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmhls/wasmhls/config"
)

// alive asserts the plugin still answers a normal call.
func alive(t *testing.T, p *Plugin, after string) {
	t.Helper()
	var out map[string]string
	if err := p.Call(context.Background(), "echo", map[string]string{"after": after}, &out); err != nil || out["after"] != after {
		t.Fatalf("plugin does not answer after %s: %v %v", after, out, err)
	}
}

func TestHostilePlugins(t *testing.T) {
	limits := testLimits()
	limits.CallTimeout = config.Duration(time.Second)
	limits.MemoryMB = 48
	limits.MaxMessageKB = 256
	t.Setenv("WASMHLS_TEST_SECRET", "do-not-leak")
	p := loadGuest(t, config.PluginSlot{}, Options{Limits: limits})
	ctx := context.Background()

	t.Run("infinite loop stops at the deadline", func(t *testing.T) {
		err := p.Call(ctx, "loop", nil, nil)
		if !errors.Is(err, ErrPluginFailed) || !strings.Contains(err.Error(), "call timeout") {
			t.Fatalf("loop: %v", err)
		}
		alive(t, p, "loop")
	})
	t.Run("memory bomb hits the limit", func(t *testing.T) {
		err := p.Call(ctx, "bomb", nil, nil)
		if !errors.Is(err, ErrPluginFailed) || !strings.Contains(err.Error(), "limit of 48 MiB") {
			t.Fatalf("bomb: %v", err)
		}
		alive(t, p, "bomb")
	})
	t.Run("panic is an error and the instance is replaced", func(t *testing.T) {
		// Make the instance count calls, break it, and check the next call
		// runs on a fresh instance (its counter starts again).
		var c struct{ Served int }
		for range 3 {
			if err := p.Call(ctx, "count", nil, &c); err != nil {
				t.Fatal(err)
			}
		}
		idleBefore, _ := p.pool.idleMemory()
		if err := p.Call(ctx, "panic", nil, nil); !errors.Is(err, ErrPluginFailed) || !strings.Contains(err.Error(), "trapped") {
			t.Fatalf("panic: %v", err)
		}
		if idleAfter, _ := p.pool.idleMemory(); idleAfter != idleBefore {
			t.Fatalf("idle instances %d before a trap, %d after: the broken one was not replaced", idleBefore, idleAfter)
		}
		// Calls here are sequential, so the pool reuses one instance; the
		// broken one is gone and the next call must run on a fresh one.
		if err := p.Call(ctx, "count", nil, &c); err != nil {
			t.Fatalf("count after panic: %v", err)
		}
		if c.Served == 4 {
			t.Fatalf("the panicked instance was reused")
		}
	})
	t.Run("file open fails inside the guest", func(t *testing.T) {
		err := p.Call(ctx, "open_file", nil, nil)
		if err == nil || errors.Is(err, ErrPluginFailed) || !strings.Contains(err.Error(), "open /etc/hostname") {
			t.Fatalf("open_file: %v", err)
		}
		alive(t, p, "open_file")
	})
	t.Run("environment is empty", func(t *testing.T) {
		var env struct {
			Environ []string
			Home    string
		}
		if err := p.Call(ctx, "env", nil, &env); err != nil {
			t.Fatal(err)
		}
		if len(env.Environ) != 0 || env.Home != "" {
			t.Fatalf("guest sees an environment: %v %q", env.Environ, env.Home)
		}
	})
	t.Run("garbage, oversize and bad pointers are failures", func(t *testing.T) {
		for op, want := range map[string]string{
			"garbage": "not a JSON envelope",
			"huge":    "exceed",
			"bad_ptr": "outside guest memory",
		} {
			var out map[string]any
			err := p.Call(ctx, op, nil, &out)
			if !errors.Is(err, ErrPluginFailed) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p.path) {
				t.Errorf("%s: %v", op, err)
			}
			if out != nil {
				t.Errorf("%s: a result came back: %v", op, out)
			}
			alive(t, p, op)
		}
	})
	t.Run("request over max_message_kb is refused", func(t *testing.T) {
		big := json.RawMessage(`"` + strings.Repeat("x", 300<<10) + `"`)
		if err := p.Call(ctx, "echo", big, nil); err == nil || !strings.Contains(err.Error(), "max_message_kb") {
			t.Fatalf("big request: %v", err)
		}
	})
}

func TestPoolBoundAndRecycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	limits := testLimits()
	limits.PoolSize = 2
	limits.RecycleAfter = 3
	p := loadGuest(t, config.PluginSlot{}, Options{Limits: limits, Registerer: reg})
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	maxServed := make(chan int, 64)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				var c struct{ Served int }
				if err := p.Call(ctx, "count", nil, &c); err != nil {
					errs <- err
					return
				}
				maxServed <- c.Served
				<-maxServed // keep the channel small; the value was checked below
				if c.Served > 3 {
					errs <- errors.New("an instance served more than recycle_after calls")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := gauge(t, reg, "wasmhls_plugin_instances"); n > 2 || n < 0 {
		t.Fatalf("instances gauge = %v, pool_size is 2", n)
	}
}

// gauge sums a gauge family's values in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
		}
	}
	return sum
}

func TestLoadRefusals(t *testing.T) {
	ctx := context.Background()
	good := buildGuest(t, "store", "1", "")
	garbage := filepath.Join(t.TempDir(), "garbage.wasm")
	if err := os.WriteFile(garbage, []byte("\x00asm but not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	abi2 := buildGuest(t, "store", "2", "")
	withRedis := buildGuest(t, "store", "1", "redis")
	for _, tc := range []struct {
		name string
		kind string
		slot config.PluginSlot
		want []string
	}{
		{"wrong ABI", "store", config.PluginSlot{Path: abi2}, []string{abi2, "ABI version 2", "ABI version 1"}},
		{"ungranted redis import", "store", config.PluginSlot{Path: withRedis}, []string{withRedis, "wasmhls.redis", "capability redis is not granted"}},
		{"redis granted without a client", "store", config.PluginSlot{Path: withRedis, Capabilities: []string{"redis"}}, []string{withRedis, "redis.url"}},
		{"wrong kind", "takeover", config.PluginSlot{Path: good}, []string{good, "is a store plugin", "needs a takeover plugin"}},
		{"sha256 pin", "store", config.PluginSlot{Path: good, SHA256: strings.Repeat("ab", 32)}, []string{good, "sha256", "pins"}},
		{"missing file", "store", config.PluginSlot{Path: "/nonexistent/x.wasm"}, []string{"/nonexistent/x.wasm", "no such file"}},
		{"not wasm", "store", config.PluginSlot{Path: garbage}, []string{garbage, "compile"}},
		{"unknown builtin", "store", config.PluginSlot{Path: "builtin:nope"}, []string{"builtin:nope", "no built-in plugin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(ctx, tc.kind, tc.slot, Options{Limits: testLimits(), CacheDir: cacheDir})
			if err == nil {
				_ = p.Close(ctx)
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// Kind "" (plugin check) accepts any kind.
	p, err := Load(ctx, "", config.PluginSlot{Path: good}, Options{Limits: testLimits(), CacheDir: cacheDir})
	if err != nil {
		t.Fatalf("kind-less load: %v", err)
	}
	_ = p.Close(ctx)
}

func TestCompilationCacheReused(t *testing.T) {
	dir := t.TempDir()
	path := buildGuest(t, "store", "1", "")
	ctx := context.Background()
	load := func() {
		p, err := Load(ctx, "store", config.PluginSlot{Path: path}, Options{Limits: testLimits(), CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		alive(t, p, "load")
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	load()
	first := snapshot(t, dir)
	if len(first) == 0 {
		t.Fatal("compilation cache dir is empty after a load")
	}
	load() // a fresh CompilationCache on the same dir: must read, not write
	if second := snapshot(t, dir); !equalSnap(first, second) {
		t.Fatalf("second load rewrote the cache:\n%v\n%v", first, second)
	}
}

func snapshot(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			m[p] = fi.ModTime()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equalSnap(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.Equal(v) {
			return false
		}
	}
	return true
}
