package host

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/wasmhls/wasmhls/config"
)

// plugins.limits.enforce_deadline reaches every slot's runtime through New
// (and through Reload, which reuses New's options); on by default.
func TestEnforceDeadlineFromConfig(t *testing.T) {
	for _, enforce := range []bool{true, false} {
		dir := t.TempDir()
		cfg := config.Default()
		for kind, slot := range map[string]*config.PluginSlot{"store": &cfg.Plugins.Store,
			"takeover": &cfg.Plugins.Takeover, "cleanup": &cfg.Plugins.Cleanup} {
			path := filepath.Join(dir, kind+".wasm")
			copyFile(t, buildGuest(t, kind, "1", ""), path)
			*slot = config.PluginSlot{Path: path}
		}
		cfg.Plugins.Limits = testLimits()
		cfg.Plugins.Limits.EnforceDeadline = enforce
		h, err := New(context.Background(), cfg, Options{CacheDir: cacheDir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		check := func(when string) {
			for _, s := range h.slots {
				if got := s.cur.Load().plugin.noTimeout; got == enforce {
					t.Errorf("enforce_deadline %v, %s: slot %s runs with NoCallDeadline %v", enforce, when, s.name, got)
				}
			}
		}
		check("after New")
		if _, err := h.Reload(context.Background()); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		check("after Reload")
		var out map[string]any
		if err := h.slots[0].Call(context.Background(), "echo", map[string]string{"id": "x"}, &out); err != nil || out["id"] != "x" {
			t.Errorf("enforce_deadline %v: echo = %v, %v", enforce, out, err)
		}
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
