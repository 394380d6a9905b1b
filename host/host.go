package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/session"
)

// Host holds the three plugin slots of a configuration. Each slot is an
// atomically swappable generation: Reload loads, checks and self-tests a new
// generation, swaps it in, and closes the old one once its calls drain.
type Host struct {
	opts     Options
	cache    wazero.CompilationCache
	slots    []*slot // store, takeover, cleanup
	store    *StoreClient
	takeover *TakeoverClient
	cleanup  *CleanupClient

	reloadMu sync.Mutex     // one reload at a time
	drainers sync.WaitGroup // goroutines closing retired generations
}

type slot struct {
	name  string // store|takeover|cleanup (also the kind)
	conf  config.PluginSlot
	cur   atomic.Pointer[generation]
	next  int // generation counter, under Host.reloadMu
	stats *callStats
}

// generation is one loaded plugin in a slot and the calls running on it.
type generation struct {
	n        int
	plugin   *Plugin
	inflight atomic.Int64
	retired  atomic.Bool
	drained  chan struct{}
	once     sync.Once
}

func (g *generation) release() {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.once.Do(func() { close(g.drained) })
	}
}

func (g *generation) retire() {
	g.retired.Store(true)
	if g.inflight.Load() == 0 {
		g.once.Do(func() { close(g.drained) })
	}
}

// acquire pins the current generation for one call. A caller that pinned a
// generation just as it was replaced lets go and pins the new one, so a
// retired generation only ever waits for calls that really run on it.
func (s *slot) acquire() *generation {
	for {
		g := s.cur.Load()
		g.inflight.Add(1)
		if s.cur.Load() == g {
			return g
		}
		g.release()
	}
}

// Call implements Caller on the slot's current generation.
func (s *slot) Call(ctx context.Context, op string, req, resp any) error {
	g := s.acquire()
	defer g.release()
	return g.plugin.Call(ctx, op, req, resp)
}

// New loads the store, takeover and cleanup plugins of cfg. Zero
// opts.Limits take cfg.Plugins.Limits; an empty opts.CacheDir takes
// cfg.Plugins.CacheDir (the server resolves its default).
// cfg.Plugins.Limits.EnforceDeadline false sets opts.NoCallDeadline (the
// operator's choice for trusted plugins; it is logged as a warning).
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Host, err error) {
	if opts.Limits == (config.PluginLimits{}) {
		opts.Limits = cfg.Plugins.Limits
	}
	if !cfg.Plugins.Limits.EnforceDeadline && !opts.NoCallDeadline {
		opts.NoCallDeadline = true
		logger := opts.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Warn("plugin call deadline is off (plugins.limits.enforce_deadline: false): a plugin stuck in a loop will hang its request for ever")
	}
	if opts.CacheDir == "" {
		opts.CacheDir = cfg.Plugins.CacheDir
	}
	if opts.metrics == nil {
		opts.metrics = newMetrics(opts.Registerer)
	}
	h := &Host{opts: opts}
	if opts.CacheDir != "" {
		if h.cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir); err != nil {
			return nil, fmt.Errorf("plugin compilation cache %s: %w", opts.CacheDir, err)
		}
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	defer func() {
		if err != nil {
			_ = h.Close(context.WithoutCancel(ctx))
		}
	}()
	for _, s := range []struct {
		name string
		conf config.PluginSlot
	}{{abi.KindStore, cfg.Plugins.Store}, {abi.KindTakeover, cfg.Plugins.Takeover}, {abi.KindCleanup, cfg.Plugins.Cleanup}} {
		sl := &slot{name: s.name, conf: s.conf, stats: newCallStats()}
		g, err := h.loadGeneration(ctx, sl)
		if err != nil {
			return nil, fmt.Errorf("plugins.%s: %w", s.name, err)
		}
		sl.cur.Store(g)
		h.slots = append(h.slots, sl)
	}
	h.store = NewStoreClient(h.slots[0])
	h.takeover = NewTakeoverClient(h.slots[1])
	h.cleanup = NewCleanupClient(h.slots[2])
	return h, nil
}

func (h *Host) loadGeneration(ctx context.Context, s *slot) (*generation, error) {
	o := h.opts
	o.cache, o.slot, o.stats = h.cache, s.name, s.stats
	if g := s.cur.Load(); g != nil {
		o.reuse = g.plugin
	}
	p, err := Load(ctx, s.name, s.conf, o)
	if err != nil {
		return nil, err
	}
	s.next++
	return &generation{n: s.next, plugin: p, drained: make(chan struct{})}, nil
}

func (h *Host) Store() session.Store             { return h.store }
func (h *Host) Takeover() session.TakeoverPolicy { return h.takeover }
func (h *Host) Cleanup() session.CleanupRules    { return h.cleanup }

// PluginInfo is one slot in GET /api/v1/plugins.
type PluginInfo struct {
	Slot         string   `json:"slot"`
	Name         string   `json:"name"`
	Path         string   `json:"path"`
	Kind         string   `json:"kind"`
	SHA256       string   `json:"sha256"`
	ABI          int      `json:"abi"`
	Version      string   `json:"version"`
	Capabilities []string `json:"capabilities"`
	Generation   int      `json:"generation"`
	Calls        uint64   `json:"calls"`
	Errors       uint64   `json:"errors"`
	P50Micros    float64  `json:"p50_us"`
	P99Micros    float64  `json:"p99_us"`
	// IdleInstances and IdleMemoryBytes describe the current generation's
	// idle instances (linear memory only; instances in use are not counted).
	IdleInstances   int    `json:"idle_instances"`
	IdleMemoryBytes uint64 `json:"idle_memory_bytes"`
}

// Plugins describes every slot (the body of GET /api/v1/plugins). Calls
// and errors count every generation of the slot; an error is a failed call
// or an error/bad_op status, not a lost/not_found/conflict answer.
func (h *Host) Plugins(context.Context) any {
	out := make([]PluginInfo, 0, len(h.slots))
	for _, s := range h.slots {
		g := s.cur.Load()
		d := g.plugin.Description()
		p50, p99 := s.stats.quantiles()
		idle, mem := g.plugin.pool.idleMemory()
		out = append(out, PluginInfo{
			Slot: s.name, Name: d.Name, Path: s.conf.Path, Kind: d.Kind, SHA256: g.plugin.SHA256(),
			ABI: abi.Version, Version: d.Version, Capabilities: d.Capabilities, Generation: g.n,
			Calls: s.stats.calls.Load(), Errors: s.stats.errors.Load(),
			P50Micros: float64(p50) / float64(time.Microsecond), P99Micros: float64(p99) / float64(time.Microsecond),
			IdleInstances: idle, IdleMemoryBytes: mem,
		})
	}
	return out
}

// ReloadResult is one slot in the answer of POST /api/v1/plugins/reload.
type ReloadResult struct {
	Slot       string `json:"slot"`
	OK         bool   `json:"ok"`
	Generation int    `json:"generation"` // the generation serving now
	SHA256     string `json:"sha256"`
	Error      string `json:"error,omitempty"`
}

// Reload reloads every slot from its configured path. A slot whose new
// file fails to load, check or self-test keeps its current generation;
// the error names each such slot and reason. The result lists every slot.
func (h *Host) Reload(ctx context.Context) (any, error) {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	res := make([]ReloadResult, 0, len(h.slots))
	var errs []error
	for _, s := range h.slots {
		r := ReloadResult{Slot: s.name}
		g, err := h.loadGeneration(ctx, s)
		h.opts.metrics.reload(s.name, err == nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins.%s: %w", s.name, err))
			r.Error = err.Error()
			cur := s.cur.Load()
			r.Generation, r.SHA256 = cur.n, cur.plugin.SHA256()
			h.opts.logOrDefault().Warn("plugin reload failed; the previous generation keeps serving", "slot", s.name, "err", err)
		} else {
			old := s.cur.Swap(g)
			h.retire(old)
			r.OK, r.Generation, r.SHA256 = true, g.n, g.plugin.SHA256()
		}
		res = append(res, r)
	}
	return res, errors.Join(errs...)
}

// retire closes a replaced generation once its in-flight calls finish.
// Calls are bounded by the call timeout, so the wait is too.
func (h *Host) retire(g *generation) {
	g.retire()
	h.drainers.Add(1)
	go func() { // owner: Host; Close waits for it
		defer h.drainers.Done()
		<-g.drained
		_ = g.plugin.Close(context.Background())
	}()
}

// Close retires every slot's generation, waits for calls to drain and
// closes the plugins and the compilation cache.
func (h *Host) Close(ctx context.Context) error {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	for _, s := range h.slots {
		if g := s.cur.Load(); g != nil {
			h.retire(g)
		}
	}
	h.drainers.Wait()
	if h.cache != nil {
		return h.cache.Close(ctx)
	}
	return nil
}

func (o Options) logOrDefault() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}
