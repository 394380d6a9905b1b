// Package host runs wasmhls' WebAssembly plugins with wazero: it loads and
// checks modules (ABI version, kind, capabilities), provides the host
// functions (capabilities), keeps a bounded pool of instances per plugin
// with memory, time and message-size limits, swaps generations on reload,
// and offers typed clients (StoreClient, TakeoverClient, CleanupClient)
// that implement the session package's interfaces.
package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
)

// Options configure how plugins run.
type Options struct {
	Limits     config.PluginLimits   // zero fields take config.Default()'s values
	CacheDir   string                // wazero compilation cache dir ("" = in-memory only)
	Redis      redis.UniversalClient // nil: the redis capability cannot be granted
	Logger     *slog.Logger          // nil: slog.Default()
	Registerer prometheus.Registerer // nil: no metrics exported
	// NoCallDeadline turns off wazero's close-on-context-done: calls get
	// several times cheaper (the guest no longer leaves its compiled code
	// at every loop iteration to check for cancellation) but a plugin
	// stuck in a loop then hangs its caller for ever. New sets it from
	// plugins.limits.enforce_deadline; Load reads only this field (its
	// Limits.EnforceDeadline is ignored, so a Limits literal without it
	// cannot turn the deadline off by accident).
	NoCallDeadline bool

	// Set by Host so that every slot and generation shares one cache and
	// one set of metrics; Load alone makes its own.
	cache   wazero.CompilationCache
	metrics *metrics
	stats   *callStats
	slot    string // metric label; Load alone uses the kind
	// reuse is the slot's current plugin on reload: when the new file has
	// the same sha256, the new generation shares its runtime and compiled
	// module (decoding and validating a Go module costs tens of ms even
	// with a warm compilation cache) and only makes fresh instances.
	reuse *Plugin
}

// Caller is what the typed clients need: one operation with a JSON request
// and response. *Plugin and a Host's slots implement it.
type Caller interface {
	Call(ctx context.Context, op string, req, resp any) error
}

// Plugin is one loaded module: its own wazero Runtime (so only granted host
// functions exist for it) and a pool of instances.
type Plugin struct {
	path   string // as configured: a file or builtin:NAME
	slot   string
	sha    string
	desc   abi.Description
	limits config.PluginLimits
	maxMsg int
	log    *slog.Logger

	rt         wazero.Runtime
	compiled   wazero.CompiledModule
	shared     *sharedRuntime
	modCfg     wazero.ModuleConfig
	pool       *pool
	redis      redis.UniversalClient
	scripts    scriptCache
	configJSON []byte

	metrics   *metrics
	stats     *callStats
	closed    atomic.Bool
	noTimeout bool
}

func withDefaults(l config.PluginLimits) config.PluginLimits {
	d := config.Default().Plugins.Limits
	if l.MemoryMB <= 0 {
		l.MemoryMB = d.MemoryMB
	}
	if l.CallTimeout <= 0 {
		l.CallTimeout = d.CallTimeout
	}
	if l.PoolSize <= 0 {
		l.PoolSize = d.PoolSize
	}
	if l.RecycleAfter <= 0 {
		l.RecycleAfter = d.RecycleAfter
	}
	if l.MaxMessageKB <= 0 {
		l.MaxMessageKB = d.MaxMessageKB
	}
	return l
}

// Load compiles and instantiates one plugin for a slot kind ("store",
// "takeover", "cleanup"; "" accepts any kind), checks its ABI version,
// description and capabilities, and runs its self_test. Every error names
// the plugin file.
func Load(ctx context.Context, kind string, slot config.PluginSlot, opts Options) (*Plugin, error) {
	b, sum, err := readModule(slot)
	if err != nil {
		return nil, err
	}
	return load(ctx, kind, slot, b, sum, opts)
}

func load(ctx context.Context, kind string, slot config.PluginSlot, wasm []byte, sum string, opts Options) (_ *Plugin, err error) {
	name := slot.Path
	fail := func(format string, a ...any) error {
		return fmt.Errorf("load plugin %s: "+format, append([]any{name}, a...)...)
	}
	switch kind {
	case "", abi.KindStore, abi.KindTakeover, abi.KindCleanup:
	default:
		return nil, fail("unknown slot kind %q", kind)
	}
	limits := withDefaults(opts.Limits)
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	p := &Plugin{
		path: name, slot: opts.slot, sha: sum, limits: limits,
		maxMsg: limits.MaxMessageKB * 1024, redis: opts.Redis,
		metrics: opts.metrics, stats: opts.stats, noTimeout: opts.NoCallDeadline,
	}
	if p.slot == "" {
		p.slot = kind
	}
	if p.metrics == nil {
		p.metrics = newMetrics(opts.Registerer)
	}
	if p.stats == nil {
		p.stats = newCallStats()
	}
	p.log = logger.With("plugin", name, "slot", p.slot)
	p.configJSON = []byte("{}")
	if slot.Config != nil {
		p.configJSON, err = json.Marshal(jsonSafe(slot.Config))
	}
	if err != nil {
		return nil, fail("encode its config: %v", err)
	}
	granted := grantedCaps(slot)
	hint := "add it to the slot's capabilities"
	if granted[abi.CapRedis] && opts.Redis == nil {
		// Without a client the capability cannot work; refuse it only if
		// the module really asks for it (checked below).
		delete(granted, abi.CapRedis)
		hint = "the redis capability needs redis.url to be set"
	}

	defer func() {
		if err != nil {
			_ = p.Close(context.WithoutCancel(ctx))
		}
	}()
	if r := opts.reuse; r != nil && r.sha == sum && r.limits == limits && opts.NoCallDeadline == r.noTimeout {
		r.shared.refs.Add(1)
		p.rt, p.compiled, p.shared = r.rt, r.compiled, r.shared
	} else if err := p.compile(ctx, wasm, granted, hint, opts); err != nil {
		return nil, fail("%v", err)
	}
	// No preopened directories, no environment, no args, no stdin; stdout
	// and stderr are dropped. Clocks and randomness are the real ones so the
	// guest runtime (Go's scheduler, map seeds) behaves; the clock capability
	// is what a plugin's logic may rely on. Sleeping stays wazero's no-op:
	// a plugin call must never block, and with a real nanosleep a Go guest's
	// idle scheduler slept inside calls (store-redis get took twice as long).
	p.modCfg = wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithSysWalltime().WithSysNanotime().
		WithRandSource(cryptoRand{})
	p.pool = newPool(limits.PoolSize, p)

	// One instance now, so a broken plugin fails at load.
	in, err := p.newInstance(ctx)
	if err != nil {
		return nil, fail("instantiate: %v", err)
	}
	p.pool.prime()
	defer func() {
		if in != nil { // an error before the instance went back to the pool
			p.pool.discard(in)
		}
	}()
	if v, err := in.abiVersion(ctx, p.callTimeout()); err != nil {
		return nil, fail("%s: %v", abi.ExportABIVersion, err)
	} else if v != abi.Version {
		return nil, fail("ABI version %d, this host speaks ABI version %d", v, abi.Version)
	}
	if p.desc, err = in.describe(ctx, p.callTimeout(), p.maxMsg); err != nil {
		return nil, fail("%s: %v", abi.ExportDescribe, err)
	}
	if p.desc.ABI != 0 && p.desc.ABI != abi.Version {
		return nil, fail("description says ABI version %d, this host speaks ABI version %d", p.desc.ABI, abi.Version)
	}
	switch {
	case p.desc.Kind != abi.KindStore && p.desc.Kind != abi.KindTakeover && p.desc.Kind != abi.KindCleanup:
		return nil, fail("unknown kind %q in its description", p.desc.Kind)
	case kind != "" && p.desc.Kind != kind:
		return nil, fail("is a %s plugin, the slot needs a %s plugin", p.desc.Kind, kind)
	}
	for _, c := range p.desc.Capabilities {
		if !granted[c] {
			return nil, fail("needs capability %s, which this slot does not grant (%s)", c, hint)
		}
	}
	// The pool's first instance goes back before self_test takes it again.
	p.pool.put(in, false)
	in = nil
	if err := p.Call(ctx, abi.OpSelfTest, struct{}{}, nil); err != nil {
		return nil, fail("self_test: %v", err)
	}
	return p, nil
}

// sharedRuntime is a plugin's wazero Runtime and compiled module; the
// generations of one slot that load the same file share it, and the last
// one to close closes it.
type sharedRuntime struct {
	refs     atomic.Int32
	ownCache wazero.CompilationCache // closed with the runtime when Load made it
}

// compile makes the plugin's own Runtime (host functions of granted
// capabilities only, WASI without files or environment) and compiles wasm.
func (p *Plugin) compile(ctx context.Context, wasm []byte, granted map[string]bool, hint string, opts Options) error {
	p.shared = &sharedRuntime{}
	p.shared.refs.Store(1)
	cache := opts.cache
	if cache == nil {
		var err error
		if opts.CacheDir != "" {
			if cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir); err != nil {
				return fmt.Errorf("compilation cache %s: %v", opts.CacheDir, err)
			}
		} else {
			cache = wazero.NewCompilationCache()
		}
		p.shared.ownCache = cache
	}
	rc := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(cache).
		WithMemoryLimitPages(uint32(p.limits.MemoryMB) * 16). // 64 KiB pages
		WithCloseOnContextDone(!opts.NoCallDeadline)
	p.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	var err error
	if p.compiled, err = p.rt.CompileModule(ctx, wasm); err != nil {
		return fmt.Errorf("compile: %v", err)
	}
	if err := checkImports(p.compiled, granted); err != nil {
		return fmt.Errorf("%v (%s)", err, hint)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return fmt.Errorf("wasi: %v", err)
	}
	if err := p.instantiateHostModule(ctx, granted); err != nil {
		return fmt.Errorf("host functions: %v", err)
	}
	for _, e := range []string{abi.ExportABIVersion, abi.ExportDescribe, abi.ExportMalloc, abi.ExportFree, abi.ExportCall} {
		if _, ok := p.compiled.ExportedFunctions()[e]; !ok {
			return fmt.Errorf("missing export %s (not a wasmhls plugin, or built without //go:wasmexport)", e)
		}
	}
	return nil
}

// checkImports refuses imports the sandbox does not provide, with a better
// message than wazero's instantiate error (which would also stop them,
// because the host module only exports granted functions).
func checkImports(m wazero.CompiledModule, granted map[string]bool) error {
	for _, f := range m.ImportedFunctions() {
		mod, fn, _ := f.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
		case abi.HostModule:
			c, ok := hostFuncCap[fn]
			if !ok {
				return fmt.Errorf("imports unknown host function %s.%s", mod, fn)
			}
			if !granted[c] {
				return fmt.Errorf("imports %s.%s but capability %s is not granted to this slot", mod, fn, c)
			}
		default:
			return fmt.Errorf("imports %s.%s from unknown module %s", mod, fn, mod)
		}
	}
	return nil
}

// Description is the plugin's self-description.
func (p *Plugin) Description() abi.Description { return p.desc }

// SHA256 is the hex sha256 of the module bytes.
func (p *Plugin) SHA256() string { return p.sha }

func (p *Plugin) callTimeout() time.Duration { return p.limits.CallTimeout.D() }

// Call runs one operation: req is marshalled to JSON (a []byte or
// json.RawMessage is sent as is), the response envelope is decoded into
// resp (may be nil). See decodeResponse for the status → error mapping.
func (p *Plugin) Call(ctx context.Context, op string, req, resp any) error {
	start := time.Now()
	status, err := p.call(ctx, op, req, resp)
	d := time.Since(start)
	result := status
	if errors.Is(err, ErrPluginFailed) || result == "" {
		result = "failed"
	}
	p.metrics.observeCall(p.slot, op, result, d)
	p.stats.observe(d, result != abi.StatusOK && result != abi.StatusNotFound &&
		result != abi.StatusConflict && result != abi.StatusLost)
	return err
}

func (p *Plugin) call(ctx context.Context, op string, req, resp any) (string, error) {
	if p.closed.Load() {
		return "", failed(p.path, op, errors.New("plugin is closed"))
	}
	var body []byte
	switch r := req.(type) {
	case nil:
		body = []byte("{}")
	case []byte:
		body = r
	case json.RawMessage:
		body = r
	default:
		var err error
		if body, err = json.Marshal(req); err != nil {
			return "", fmt.Errorf("plugin %s: %s: encode request: %w", p.path, op, err)
		}
	}
	if len(body)+len(op) > p.maxMsg {
		return "", fmt.Errorf("plugin %s: %s: request of %d bytes exceeds the %d-byte limit (max_message_kb)", p.path, op, len(body), p.maxMsg)
	}
	in, err := p.pool.get(ctx)
	if err != nil {
		return "", failed(p.path, op, err)
	}
	raw, broken, err := in.call(ctx, op, body, p.callTimeout(), p.noTimeout, p.maxMsg)
	if broken && err != nil && p.atMemoryLimit(in) {
		err = fmt.Errorf("%w (guest memory reached its limit of %d MiB, plugins.limits.memory_mb)", err, p.limits.MemoryMB)
	}
	p.pool.put(in, broken)
	if err != nil {
		if broken {
			p.log.Warn("plugin instance failed and was discarded", "op", op, "err", err)
		}
		return "", failed(p.path, op, err)
	}
	return decodeResponse(p.path, op, raw, p.maxMsg, resp)
}

// atMemoryLimit tells whether a failed instance's memory could not grow
// any more (a Go guest then dies with "out of memory"): within 4 MiB of
// the limit, the size of a typical large allocation.
func (p *Plugin) atMemoryLimit(in *instance) bool {
	limit := uint64(p.limits.MemoryMB) << 20
	return uint64(in.mem.Size())+4<<20 >= limit
}

// Close closes the plugin's runtime and every instance; calls still running
// fail. A Host drains a generation before closing it.
func (p *Plugin) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	var errs []error
	if p.pool != nil {
		p.pool.closeIdle(ctx)
	}
	if p.shared != nil && p.shared.refs.Add(-1) == 0 {
		if p.rt != nil {
			errs = append(errs, p.rt.Close(ctx))
		}
		if p.shared.ownCache != nil {
			errs = append(errs, p.shared.ownCache.Close(ctx))
		}
	}
	return errors.Join(errs...)
}

// jsonSafe converts YAML-decoded maps (map[any]any in nested positions
// when decoded loosely) into JSON-encodable values.
func jsonSafe(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = jsonSafe(x)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = jsonSafe(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = jsonSafe(x)
		}
		return out
	}
	return v
}
