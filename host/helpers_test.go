package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/config"
)

// guests caches test plugin builds for the whole test binary: the source is
// host/testdata/guest, variants differ by -ldflags -X and build tags.
var guests struct {
	sync.Mutex
	dir   string
	built map[string]string
}

// buildGuest compiles host/testdata/guest as a wasip1 reactor. kind and abi
// select the self-description; tags adds build tags (e.g. "redis").
func buildGuest(t testing.TB, kind, abiVersion, tags string) string {
	t.Helper()
	guests.Lock()
	defer guests.Unlock()
	key := kind + "/" + abiVersion + "/" + tags
	if p, ok := guests.built[key]; ok {
		return p
	}
	if guests.built == nil {
		guests.built = map[string]string{}
	}
	out := filepath.Join(guests.dir, strings.NewReplacer("/", "_").Replace(key)+".wasm")
	args := []string{"build", "-buildmode=c-shared", "-o", out,
		"-ldflags", fmt.Sprintf("-X main.kind=%s -X main.abiVersion=%s", kind, abiVersion)}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, "./testdata/guest")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test guest %s: %v\n%s", key, err, b)
	}
	guests.built[key] = out
	return out
}

// cacheDir is a wazero compilation cache shared by the tests so each guest
// variant is compiled once per test binary.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmhls-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guests.dir = dir
	// wazero keys its cache by module hash, wazero version and runtime
	// options, so a cache kept across runs is safe and spares the slow
	// compiles (tens of seconds under -race on 2 cores) on every run.
	// TestCompilationCacheReused uses its own empty directory.
	cacheDir = filepath.Join(dir, "cache")
	if uc, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(uc, "wasmhls", "host-test-wazero-cache")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testLimits() config.PluginLimits {
	return config.PluginLimits{MemoryMB: 64, CallTimeout: config.Duration(2 * time.Second), PoolSize: 2,
		RecycleAfter: 1000, MaxMessageKB: 1024}
}

// loadGuest loads the default store guest with opts' limits (or testLimits).
func loadGuest(t testing.TB, slot config.PluginSlot, opts Options) *Plugin {
	t.Helper()
	if slot.Path == "" {
		slot.Path = buildGuest(t, "store", "1", "")
	}
	if opts.Limits == (config.PluginLimits{}) {
		opts.Limits = testLimits()
	}
	if opts.CacheDir == "" {
		opts.CacheDir = cacheDir
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := Load(context.Background(), "store", slot, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}
