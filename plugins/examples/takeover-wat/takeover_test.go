// Package takeoverwat holds the hand-written WAT takeover policy
// (takeover.wat) and its test: the module is built with wat2wasm, loaded
// by the real host and checked with the takeover conformance suite.
package takeoverwat

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/host"
	"github.com/wasmhls/wasmhls/plugins/conformance"
)

func buildWAT(t *testing.T) string {
	t.Helper()
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not found: install wabt (scripts/install-deps.sh, or apt-get install wabt) to build takeover.wat")
	}
	out := filepath.Join(t.TempDir(), "takeover.wasm")
	if b, err := exec.Command(wat2wasm, "takeover.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm takeover.wat: %v\n%s", err, b)
	}
	return out
}

func TestTakeoverWAT(t *testing.T) {
	ctx := t.Context()
	p, err := host.Load(ctx, abi.KindTakeover, config.PluginSlot{Path: buildWAT(t)},
		host.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if d := p.Description(); d.Name != "takeover-wat" || d.Kind != abi.KindTakeover || d.ABI != abi.Version {
		t.Fatalf("description %+v", d)
	}
	policy := host.NewTakeoverClient(p)
	conformance.RunT(t, policy, conformance.Options{})

	const now = int64(1_700_000_000_000)
	for _, c := range []struct {
		state   string
		expires int64
		want    string
	}{
		{abi.StateReleased, now + 60_000, abi.DecideTakeover},
		{abi.StateActive, now + 60_000, abi.DecideProxy},
		{abi.StateActive, now - 60_000, abi.DecideProxy}, // the documented limitation
	} {
		rec := abi.JobRecord{ID: "j", Owner: "a", OwnerURL: "http://a", Epoch: 1, State: c.state, LeaseExpiresMs: c.expires}
		// Many calls on one instance: the bump allocator must not run out.
		for range 50 {
			d, err := policy.Decide(ctx, abi.DecideRequest{Record: rec, NowMs: now, Pod: "b"})
			if err != nil {
				t.Fatalf("decide %s: %v", c.state, err)
			}
			if d.Decision != c.want {
				t.Fatalf("state %s lease %+d ms: decision %q, want %q", c.state, c.expires-now, d.Decision, c.want)
			}
		}
	}
	if err := p.Call(ctx, "plan", abi.PlanRequest{}, nil); err == nil {
		t.Fatal("an operation the module does not know succeeded")
	}
}
