package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/tetratelabs/wazero"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/host"
	"github.com/wasmhls/wasmhls/plugins/builtin"
	"github.com/wasmhls/wasmhls/plugins/conformance"
)

const pluginUsage = `usage: wasmhls plugin check FILE [--redis URL] [--kind store|takeover|cleanup] [--stateless] [--config JSON]

Loads FILE (a .wasm file or builtin:NAME) as the server would, prints its
self-description and runs the conformance suite of its kind, one line per
case. Exits non-zero when the plugin does not load or any case fails.

  --redis URL     Redis for a store that needs the redis capability (use a
                  scratch database: the suite writes keys that expire)
  --kind K        refuse the plugin unless it is of kind K
  --stateless     run the store subset for stores that keep nothing
                  (implied for store-null)
  --config JSON   the plugin's config block, as JSON
`

// runPlugin implements `wasmhls plugin check`.
func runPlugin(args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("want a subcommand\n" + pluginUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return pluginCheck(ctx, os.Stdout, args[1:])
}

type checkArgs struct {
	file, redisURL, kind, configJSON string
	stateless                        bool
}

func parseCheckArgs(args []string) (checkArgs, error) {
	var a checkArgs
	fs := flag.NewFlagSet("plugin check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.redisURL, "redis", "", "")
	fs.StringVar(&a.kind, "kind", "", "")
	fs.StringVar(&a.configJSON, "config", "", "")
	fs.BoolVar(&a.stateless, "stateless", false, "")
	// FILE may come before or after the flags.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return a, fmt.Errorf("%v\n%s", err, pluginUsage)
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		return a, fmt.Errorf("want exactly one plugin FILE, got %d\n%s", len(files), pluginUsage)
	}
	a.file = files[0]
	switch a.kind {
	case "", abi.KindStore, abi.KindTakeover, abi.KindCleanup:
	default:
		return a, fmt.Errorf("--kind %q: want store, takeover or cleanup", a.kind)
	}
	return a, nil
}

func pluginCheck(ctx context.Context, w io.Writer, args []string) error {
	a, err := parseCheckArgs(args)
	if err != nil {
		return err
	}
	slot := config.PluginSlot{Path: a.file}
	if a.configJSON != "" {
		if err := json.Unmarshal([]byte(a.configJSON), &slot.Config); err != nil {
			return fmt.Errorf("--config: %w", err)
		}
	}
	var rdb redis.UniversalClient
	if a.redisURL != "" {
		if rdb, err = host.NewRedis(a.redisURL); err != nil {
			return err
		}
		defer rdb.Close()
		slot.Capabilities = []string{abi.CapRedis}
	} else if needs, err := importsRedis(ctx, a.file); err != nil {
		return err
	} else if needs {
		return fmt.Errorf("plugin %s uses the redis capability: run it against a scratch Redis with --redis redis://HOST:PORT", a.file)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := host.Load(ctx, a.kind, slot, host.Options{Limits: config.Default().Plugins.Limits, Redis: rdb, Logger: logger})
	if err != nil {
		return err
	}
	defer p.Close(context.Background())

	d := p.Description()
	fmt.Fprintf(w, "plugin %s\n  name:         %s\n  kind:         %s\n  version:      %s\n  abi:          %d\n  capabilities: %s\n  sha256:       %s\n",
		a.file, d.Name, d.Kind, d.Version, d.ABI, strings.Join(d.Capabilities, ", "), p.SHA256())

	var results []conformance.Result
	switch d.Kind {
	case abi.KindStore:
		stateless := a.stateless || d.Name == "store-null"
		if stateless {
			fmt.Fprintln(w, "store suite: stateless subset")
		}
		results = conformance.Run(ctx, host.NewStoreClient(p), conformance.Options{Stateless: stateless})
	case abi.KindTakeover:
		results = conformance.RunTakeover(ctx, host.NewTakeoverClient(p))
	case abi.KindCleanup:
		results = conformance.RunCleanup(ctx, host.NewCleanupClient(p))
	default:
		return fmt.Errorf("plugin %s: no conformance suite for kind %q", a.file, d.Kind)
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(w, "FAIL %s: %v\n", r.Name, r.Err)
			continue
		}
		fmt.Fprintf(w, "PASS %s\n", r.Name)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("plugin %s: %d of %d conformance cases failed", a.file, failed, len(results))
	}
	return nil
}

// importsRedis reports whether the module imports the redis host function,
// so that a missing --redis gets a clear message instead of a load error.
func importsRedis(ctx context.Context, file string) (bool, error) {
	var (
		b   []byte
		err error
	)
	if name, ok := strings.CutPrefix(file, builtin.Prefix); ok {
		b, err = builtin.Open(name)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return false, fmt.Errorf("read plugin %s: %w", file, err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(context.Background())
	m, err := rt.CompileModule(ctx, b)
	if err != nil {
		return false, fmt.Errorf("plugin %s is not a valid WebAssembly module: %w", file, err)
	}
	for _, f := range m.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod == abi.HostModule && name == abi.FuncRedis {
			return true, nil
		}
	}
	return false, nil
}
