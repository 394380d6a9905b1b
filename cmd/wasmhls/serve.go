package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/wasmhls/wasmhls/catalog"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/hls"
	"github.com/wasmhls/wasmhls/host"
	"github.com/wasmhls/wasmhls/session"
	"github.com/wasmhls/wasmhls/transcode"
)

// shutdownGrace bounds the graceful stop: HTTP requests in flight, then jobs.
const shutdownGrace = 20 * time.Second

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := fs.String("config", "config.yaml", `configuration file ("" = defaults + WASMHLS_* environment)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	base := newLogger(cfg.Log)
	log := base.With("pod", cfg.PodName)
	if m := cfg.HWAccel.Mode; m != "" && m != "auto" && m != "none" {
		// GPU encoding is not implemented yet (docs/HA.md): say so rather
		// than let an operator believe the GPU is in use.
		log.Warn("hwaccel.mode is not implemented in this release; encoding with libx264", "mode", m)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := session.NewMetrics(reg)

	if err := os.MkdirAll(cfg.TranscodeDir, 0o755); err != nil {
		return fmt.Errorf("transcode_dir %s: %w", cfg.TranscodeDir, err)
	}
	cat, err := catalog.New(cfg.MediaDir, transcode.Probe)
	if err != nil {
		return err
	}

	ha, err := wireHA(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	defer ha.close()

	lease := cfg.Lease.Duration.D()
	mgr := session.NewManager(session.ManagerConfig{
		Pod: cfg.PodName, AdvertiseURL: cfg.AdvertiseURL, TranscodeDir: cfg.TranscodeDir,
		Lease: lease, RenewEvery: cfg.Lease.RenewEvery.D(),
		AheadSegments: cfg.Transcode.AheadSegments, MaxJobs: cfg.Transcode.MaxJobs,
		IdleTimeout: cfg.Transcode.IdleTimeout.D(),
	}, ha.store, ha.policy, base, metrics) // the manager adds pod itself

	rungs := make([]transcode.Rung, len(cfg.Ladder))
	for i, r := range cfg.Ladder {
		rungs[i] = transcode.Rung{Name: r.Name, Height: r.Height, VideoBitrate: int(r.VideoBitrate), AudioBitrate: int(r.AudioBitrate)}
	}
	e, err := hls.New(hls.Options{
		Pod: cfg.PodName, Catalog: cat, Manager: mgr, Rungs: rungs,
		SegmentSeconds: cfg.SegmentSeconds, Preset: cfg.Transcode.Preset, AdminToken: cfg.Admin.Token,
		Plugins: ha.admin, Registry: reg, Log: log,
		ProxyTimeout: proxyTimeout(lease, cfg.Lease.RenewEvery.D()),
	})
	if err != nil {
		mgr.Close(context.Background())
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		mgr.Close(context.Background())
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// Background workers owned by serve: stopped (and waited for) on the
	// way out, after the manager has released its jobs.
	bgCtx, bgStop := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	defer func() { bgStop(); bg.Wait() }()
	if ha.rules != nil && cfg.Cleanup.Interval.D() > 0 {
		cw := session.NewCleanupWorker(session.CleanupConfig{
			Pod: cfg.PodName, TranscodeDir: cfg.TranscodeDir, Interval: cfg.Cleanup.Interval.D(),
			MaxAge: cfg.Cleanup.MaxAge.D(), HighWaterBytes: cfg.Cleanup.HighWaterBytes, Metrics: metrics,
		}, ha.store, ha.rules, base, reg)
		bg.Add(1)
		go func() { defer bg.Done(); cw.Run(bgCtx) }()
	}
	if ha.reload != nil {
		// SIGHUP reloads the plugins, like POST /api/v1/plugins/reload.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		bg.Add(1)
		go func() {
			defer bg.Done()
			for {
				select {
				case <-bgCtx.Done():
					return
				case <-hup:
					if res, err := ha.reload(bgCtx); err != nil {
						log.Error("plugin reload (SIGHUP) failed; the previous plugins keep serving", "err", err, "result", res)
					} else {
						log.Info("plugins reloaded (SIGHUP)", "result", res)
					}
				}
			}
		}()
	}
	log.Info("serving", "listen", ln.Addr().String(), "media_dir", cat.Root(), "transcode_dir", cfg.TranscodeDir,
		"advertise_url", cfg.AdvertiseURL)

	select {
	case err := <-serveErr:
		mgr.Close(context.Background())
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// Drain (DESIGN rule 5): /readyz turns 503 at once (the manager is
	// closed), no new job starts, every job drops its segment in flight and
	// releases its record, so the next request on another pod takes it over
	// without waiting for a lease. Finished segments keep being served until
	// the HTTP server shuts down.
	log.Info("shutting down: draining (releasing jobs), then stopping the HTTP server")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var errs []error
	begin := time.Now()
	if err := mgr.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	log.Info("jobs released", "took", time.Since(begin).Round(time.Millisecond))
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("http server: %w", err))
	}
	return errors.Join(errs...)
}

// proxyTimeout bounds a request proxied to a job's owner: long enough for
// the owner to produce the segment, short enough that a dead or paused
// owner is noticed about when its lease can be judged (a lease and a renew
// period), after which the request is decided again (and taken over).
func proxyTimeout(lease, renewEvery time.Duration) time.Duration {
	return min(max(lease+renewEvery, 5*time.Second), 15*time.Second)
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// haParts is what the plugin host contributes to a server.
type haParts struct {
	store  session.Store
	policy session.TakeoverPolicy
	rules  session.CleanupRules
	admin  hls.PluginAdmin
	reload func(ctx context.Context) (any, error) // SIGHUP
	close  func()
}

// wireHA is THE single place where the plugin host is wired in: the store,
// takeover and cleanup plugins of cfg (builtin ones by default, embedded in
// the binary), and the Redis client when redis.url is set. An unreachable
// Redis at start-up is an error naming the URL: an HA pod must not start
// without its store.
func wireHA(ctx context.Context, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (haParts, error) {
	opts := host.Options{Logger: log, Registerer: reg, CacheDir: pluginCacheDir(cfg, log), Limits: cfg.Plugins.Limits}
	var rdb redis.UniversalClient
	if cfg.Redis.URL != "" {
		c, err := host.NewRedis(cfg.Redis.URL)
		if err != nil {
			// NewRedis names the URL (password redacted).
			return haParts{}, fmt.Errorf("session store: %w", err)
		}
		rdb, opts.Redis = c, c
	}
	h, err := host.New(ctx, cfg, opts)
	if err != nil {
		if rdb != nil {
			_ = rdb.Close()
		}
		return haParts{}, fmt.Errorf("plugin host: %w", err)
	}
	log.Info("plugin host loaded", "store", cfg.Plugins.Store.Path, "takeover", cfg.Plugins.Takeover.Path,
		"cleanup", cfg.Plugins.Cleanup.Path, "redis", cfg.Redis.URL != "")
	return haParts{
		store: h.Store(), policy: h.Takeover(), rules: h.Cleanup(), admin: h, reload: h.Reload,
		close: func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.Close(cctx); err != nil {
				log.Warn("close plugin host", "err", err)
			}
			if rdb != nil {
				_ = rdb.Close()
			}
		},
	}, nil
}

// pluginCacheDir is plugins.cache_dir, or a directory under the user's
// cache dir so restarts skip compiling the plugins; "" (in-memory cache)
// when there is none.
func pluginCacheDir(cfg config.Config, log *slog.Logger) string {
	if cfg.Plugins.CacheDir != "" {
		return cfg.Plugins.CacheDir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		log.Info("no user cache dir; plugins compile in memory on every start", "err", err)
		return ""
	}
	return filepath.Join(base, "wasmhls", "wazero")
}
