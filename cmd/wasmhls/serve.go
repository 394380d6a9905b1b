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
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wasmhls/wasmhls/catalog"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/hls"
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

	mgr := session.NewManager(session.ManagerConfig{
		Pod: cfg.PodName, AdvertiseURL: cfg.AdvertiseURL, TranscodeDir: cfg.TranscodeDir,
		Lease: cfg.Lease.Duration.D(), RenewEvery: cfg.Lease.RenewEvery.D(),
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
		Plugins: ha.admin, ReadyChecks: ha.ready, Registry: reg, Log: log,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if ha.admin != nil {
		// SIGHUP reloads the plugins, like POST /api/v1/plugins/reload.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if res, err := ha.admin.Reload(ctx); err != nil {
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
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Stop jobs first: each releases its record so another pod can take it
	// over at once, and requests waiting for a segment end with 503.
	var errs []error
	if err := mgr.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("http server: %w", err))
	}
	return errors.Join(errs...)
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
	admin  hls.PluginAdmin
	ready  []func() error
	close  func()
}

// wireHA is THE single place where the plugin host is wired in.
//
// TODO(lead): replace the body with
//
//	h, err := host.New(ctx, cfg, host.Options{Logger: log, Registerer: reg,
//		CacheDir: cfg.Plugins.CacheDir, Redis: rdb /* go-redis UniversalClient from
//		cfg.Redis.URL, pinged first: exit non-zero naming the URL if unreachable */})
//	if err != nil { return haParts{}, err }
//	return haParts{store: h.Store(), policy: h.Takeover(), admin: h,
//		close: func() { h.Close(context.Background()) }}, nil
//
// (and give the cleanup worker h.Cleanup()). Until then the server runs
// single-host on an in-process MemoryStore with no takeover policy, which is
// what the default config (builtin:store-null) means anyway.
func wireHA(ctx context.Context, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (haParts, error) {
	_, _ = ctx, reg
	if cfg.Redis.URL != "" {
		return haParts{}, fmt.Errorf("redis.url %s is set but this build has no plugin host wired in (see wireHA in cmd/wasmhls/serve.go)", cfg.Redis.URL)
	}
	log.Info("single host: in-process session store, no takeover policy")
	return haParts{store: session.NewMemoryStore(nil), close: func() {}}, nil
}
