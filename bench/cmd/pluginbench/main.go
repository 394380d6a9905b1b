// Command pluginbench measures the plugin host for benchreport's "plugins"
// section and prints the figures as JSON on stdout. It runs in its own
// process so memory figures (RSS per loaded plugin) are not mixed with
// other sections. It needs the built-in plugins (`make plugins`) and
// redis-server in PATH; it starts its own Redis on a free loopback port.
//
// For finding where a call's time goes: -cpuprofile FILE profiles the host
// side (the guest shows as external code), and -guestcalls counts the
// guest functions a store-null renew and a store-redis get run (with the
// call deadline on, each guest function entry and loop iteration leaves
// the compiled code, so these counts predict the deadline's cost).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/wasmhls/wasmhls/bench/internal/figures"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/host"
)

// Result is what benchreport reads (package figures).
type Result = figures.Plugins

func main() {
	cacheDir := flag.String("cache", "bench/out/plugincache", "compilation cache directory (emptied for the cold start)")
	calls := flag.Int("n", 20000, "calls per latency measurement")
	runs := flag.Int("runs", 10, "reloads measured")
	guest := flag.Bool("guestcalls", false, "instead of the benchmark, count the guest functions a store-null renew and a store-redis get run (to stderr)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the host side to this file (for finding call overheads)")
	flag.Parse()
	if err := mainErr(*cacheDir, *calls, *runs, *guest, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "pluginbench:", err)
		os.Exit(1)
	}
}

func mainErr(cacheDir string, calls, runs int, guest bool, cpuProfile string) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if guest {
		return runGuestCalls(calls)
	}
	return run(cacheDir, calls, runs)
}

func run(cacheDir string, calls, runs int) error {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	r := Result{Calls: calls, ReloadRuns: runs}

	srv, err := startRedis()
	if err != nil {
		return err
	}
	defer srv.stop()
	capt := &captureHook{}
	rc, err := host.NewRedis(srv.url)
	if err != nil {
		return err
	}
	defer rc.Close()
	rc.AddHook(capt)

	cfg := config.Default() // builtin store-null, takeover-lease, cleanup-lease
	opts := host.Options{CacheDir: cacheDir, Logger: quiet, Redis: rc}

	// Cold start: empty cache, all four plugins compiled.
	if err := os.RemoveAll(cacheDir); err != nil {
		return err
	}
	start4 := func() (time.Duration, error) {
		t0 := time.Now()
		h, err := host.New(ctx, cfg, opts)
		if err != nil {
			return 0, err
		}
		p, err := host.Load(ctx, "store", config.PluginSlot{Path: "builtin:store-redis"}, opts)
		if err != nil {
			h.Close(ctx)
			return 0, err
		}
		d := time.Since(t0)
		p.Close(ctx)
		return d, h.Close(ctx)
	}
	d, err := start4()
	if err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	r.ColdStartMs = ms(d)
	if d, err = start4(); err != nil {
		return fmt.Errorf("warm start: %w", err)
	}
	r.WarmStartMs = ms(d)

	// store-null through the host, with and without the call deadline.
	for _, noDeadline := range []bool{false, true} {
		o := opts
		o.NoCallDeadline = noDeadline
		p, err := host.Load(ctx, "store", config.PluginSlot{Path: "builtin:store-null"}, o)
		if err != nil {
			return err
		}
		s := host.NewStoreClient(p)
		lat, err := measure(calls, func() error {
			_, err := s.Renew(ctx, "job", "pod", 1, 30*time.Second, abi.Progress{})
			return err
		})
		p.Close(ctx)
		if err != nil {
			return fmt.Errorf("store-null renew: %w", err)
		}
		if noDeadline {
			r.NullNoDeadlineP50Us, r.NullNoDeadlineP99Us = q(lat, .5), q(lat, .99)
		} else {
			r.NullP50Us, r.NullP99Us = q(lat, .5), q(lat, .99)
		}
	}

	// store-redis get through the plugin vs the same EVALSHA from go-redis.
	p, err := host.Load(ctx, "store", config.PluginSlot{Path: "builtin:store-redis"}, opts)
	if err != nil {
		return err
	}
	s := host.NewStoreClient(p)
	if _, _, err := s.Create(ctx, abi.JobRecord{ID: "bench-job", Item: "item", Variant: "720p", Owner: "pod-a",
		OwnerURL: "http://a", LastCompletedSegment: -1, LastRequestedSegment: -1}, time.Hour); err != nil {
		return fmt.Errorf("store-redis create: %w", err)
	}
	capt.arm()
	if _, err := s.Get(ctx, "bench-job"); err != nil {
		return fmt.Errorf("store-redis get: %w", err)
	}
	evalArgs := capt.take()
	if len(evalArgs) == 0 {
		p.Close(ctx)
		return fmt.Errorf("store-redis get issued no EVALSHA (cannot build the native reference)")
	}
	// The same get with the call deadline off, to separate its cost.
	o := opts
	o.NoCallDeadline = true
	pnd, err := host.Load(ctx, "store", config.PluginSlot{Path: "builtin:store-redis"}, o)
	if err != nil {
		p.Close(ctx)
		return err
	}
	snd := host.NewStoreClient(pnd)
	// Interleave blocks so drift on a busy machine hits every side alike.
	var plug, plugND, native []time.Duration
	for i := 0; i < 10 && err == nil; i++ {
		var a, b, c []time.Duration
		if a, err = measure(calls/10, func() error { _, err := s.Get(ctx, "bench-job"); return err }); err != nil {
			err = fmt.Errorf("store-redis get: %w", err)
		} else if b, err = measure(calls/10, func() error { _, err := snd.Get(ctx, "bench-job"); return err }); err != nil {
			err = fmt.Errorf("store-redis get without deadline: %w", err)
		} else if c, err = measure(calls/10, func() error { return rc.Do(ctx, evalArgs...).Err() }); err != nil {
			err = fmt.Errorf("native evalsha: %w", err)
		}
		plug, plugND, native = append(plug, a...), append(plugND, b...), append(native, c...)
	}
	p.Close(ctx)
	pnd.Close(ctx)
	if err != nil {
		return err
	}
	r.RedisPluginP50Us, r.RedisPluginP99Us = q(plug, .5), q(plug, .99)
	r.RedisNoDeadlineP50Us, r.RedisNoDeadlineP99Us = q(plugND, .5), q(plugND, .99)
	r.RedisNativeP50Us, r.RedisNativeP99Us = q(native, .5), q(native, .99)

	// Reload with a warm cache (all three slots of the default config).
	h, err := host.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	var rel []float64
	for range runs {
		t0 := time.Now()
		if _, err := h.Reload(ctx); err != nil {
			h.Close(ctx)
			return fmt.Errorf("reload: %w", err)
		}
		rel = append(rel, ms(time.Since(t0)))
	}
	slices.Sort(rel)
	r.ReloadWarmMs = rel[len(rel)/2]
	for _, pi := range h.Plugins(ctx).([]host.PluginInfo) {
		if pi.Slot == "store" && pi.IdleInstances > 0 {
			r.InstanceMemMiB = float64(pi.IdleMemoryBytes) / float64(pi.IdleInstances) / (1 << 20)
		}
	}
	if err := h.Close(ctx); err != nil {
		return err
	}

	// RSS of a Host with the three default plugins (one compilation cache,
	// one instance each), loaded from the warm disk cache.
	before := rss()
	h2, err := host.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	r.HostRSSMiB = rss() - before
	if err := h2.Close(ctx); err != nil {
		return err
	}

	// RSS per plugin loaded alone (as `wasmhls plugin check` does): 8
	// store-null plugins, each with its own runtime and one instance.
	const k = 8
	before = rss()
	var ps []*host.Plugin
	for range k {
		p, err := host.Load(ctx, "store", config.PluginSlot{Path: "builtin:store-null"}, opts)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	after := rss()
	for _, p := range ps {
		p.Close(ctx)
	}
	r.PluginRSSMiB = (after - before) / k

	return json.NewEncoder(os.Stdout).Encode(r)
}

func runGuestCalls(n int) error {
	srv, err := startRedis()
	if err != nil {
		return err
	}
	defer srv.stop()
	rc, err := host.NewRedis(srv.url)
	if err != nil {
		return err
	}
	defer rc.Close()
	return guestCalls(os.Stderr, n, host.Options{Logger: slog.New(slog.DiscardHandler), Redis: rc})
}

func measure(n int, f func() error) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func q(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Microsecond)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rss is the resident set in MiB after a GC, from /proc/self/status.
func rss() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// captureHook records the arguments of the next EVALSHA once armed, so the
// native reference replays exactly what the plugin sent.
type captureHook struct {
	armed bool
	args  []any
}

func (c *captureHook) arm()        { c.armed, c.args = true, nil }
func (c *captureHook) take() []any { c.armed = false; return c.args }

func (c *captureHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *captureHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.armed && c.args == nil && strings.EqualFold(cmd.Name(), "evalsha") {
			c.args = slices.Clone(cmd.Args())
		}
		return next(ctx, cmd)
	}
}
func (c *captureHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
