package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmhls/wasmhls/internal/redistest"
)

// buildPluginForCheck compiles ./plugins/NAME to wasip1 as the Makefile does.
func buildPluginForCheck(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../../plugins/"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

func TestPluginCheckStoreRedis(t *testing.T) {
	wasm := buildPluginForCheck(t, "store-redis")

	err := pluginCheck(t.Context(), &bytes.Buffer{}, []string{wasm})
	if err == nil || !strings.Contains(err.Error(), "--redis") {
		t.Fatalf("check without --redis: %v, want a message asking for --redis", err)
	}

	srv := redistest.Start(t)
	var out bytes.Buffer
	if err := pluginCheck(t.Context(), &out, []string{wasm, "--redis", srv.URL()}); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, want := range []string{"name:         store-redis", "PASS concurrent_takeover", "PASS stale_epoch", "PASS expiry", "0 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "FAIL") {
		t.Errorf("a case failed:\n%s", out.String())
	}
}

// store-null passes the stateless subset; a wrong --kind, two files or a
// missing file are refused with an error.
func TestPluginCheckFailuresAndKinds(t *testing.T) {
	wasm := buildPluginForCheck(t, "store-null")
	var out bytes.Buffer
	if err := pluginCheck(t.Context(), &out, []string{"--stateless", wasm}); err != nil {
		t.Fatalf("stateless check: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "PASS get_missing") {
		t.Errorf("stateless output:\n%s", out.String())
	}

	if err := pluginCheck(t.Context(), &out, []string{wasm, "--kind", "cleanup"}); err == nil {
		t.Error("a store plugin passed --kind cleanup")
	}
	if err := pluginCheck(t.Context(), &out, []string{"a.wasm", "b.wasm"}); err == nil {
		t.Error("two files accepted")
	}
	if err := pluginCheck(t.Context(), &out, []string{filepath.Join(t.TempDir(), "missing.wasm")}); err == nil || !strings.Contains(err.Error(), "missing.wasm") {
		t.Errorf("missing file: %v", err)
	}
}
