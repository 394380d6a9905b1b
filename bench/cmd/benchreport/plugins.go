package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/wasmhls/wasmhls/bench/internal/figures"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// plugins measures plugin-call overheads (issue 3) in a separate process,
// bench/cmd/pluginbench, so its memory figures stand alone.
func (b *bench) plugins() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./bench/cmd/pluginbench",
		"-cache", filepath.Join(b.work, "plugincache"), "-runs", fmt.Sprint(max(b.runs, 10)))
	cmd.Dir = b.root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "## Plugins\n", fmt.Errorf("pluginbench: %w: %s", err, lastLines(stderr.String(), 5))
	}
	var f figures.Plugins
	if err := json.Unmarshal(out, &f); err != nil {
		return "## Plugins\n", fmt.Errorf("pluginbench output %q: %w", out, err)
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	goal := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "## Plugins\n\nPlugin host overheads (bench/cmd/pluginbench, one process; %d calls per latency figure, built-in plugins, a local redis-server).\n\n", f.Calls)
	sb.WriteString("| measurement | wasmhls | reference | ratio | goal |\n| --- | --- | --- | --- | --- |\n")
	// Goals of issue 3. The call deadline is a setting
	// (plugins.limits.enforce_deadline), so each goal is judged both ways.
	fmt.Fprintf(&sb, "| store-null `renew` through the host, p50 / p99, call deadline on (default) | %.1f / %.1f µs | — | — | p50 ≤ 10 µs: %s |\n",
		f.NullP50Us, f.NullP99Us, goal(f.NullP50Us <= 10))
	fmt.Fprintf(&sb, "| same, call deadline off (`enforce_deadline: false`) | %.1f / %.1f µs | — | — | p50 ≤ 10 µs: %s |\n",
		f.NullNoDeadlineP50Us, f.NullNoDeadlineP99Us, goal(f.NullNoDeadlineP50Us <= 10))
	fmt.Fprintf(&sb, "| store-redis `get` through the plugin vs native go-redis EVALSHA of the same script, p50, call deadline on | %.1f µs | %.1f µs | %s | ≤ 1.3×: %s |\n",
		f.RedisPluginP50Us, f.RedisNativeP50Us, ratio(f.RedisPluginP50Us, f.RedisNativeP50Us), goal(f.RedisPluginP50Us <= 1.3*f.RedisNativeP50Us))
	fmt.Fprintf(&sb, "| same, call deadline off | %.1f µs | %.1f µs | %s | ≤ 1.3×: %s |\n",
		f.RedisNoDeadlineP50Us, f.RedisNativeP50Us, ratio(f.RedisNoDeadlineP50Us, f.RedisNativeP50Us), goal(f.RedisNoDeadlineP50Us <= 1.3*f.RedisNativeP50Us))
	fmt.Fprintf(&sb, "| same, p99, call deadline on / off | %.1f / %.1f µs | %.1f µs | %s / %s | — |\n",
		f.RedisPluginP99Us, f.RedisNoDeadlineP99Us, f.RedisNativeP99Us, ratio(f.RedisPluginP99Us, f.RedisNativeP99Us), ratio(f.RedisNoDeadlineP99Us, f.RedisNativeP99Us))
	fmt.Fprintf(&sb, "| cost of the call deadline: on vs off, p50, store-null `renew` / store-redis `get` | %.1f / %.1f µs | %.1f / %.1f µs (off) | %s / %s | measured; on by default |\n",
		f.NullP50Us, f.RedisPluginP50Us, f.NullNoDeadlineP50Us, f.RedisNoDeadlineP50Us,
		ratio(f.NullP50Us, f.NullNoDeadlineP50Us), ratio(f.RedisPluginP50Us, f.RedisNoDeadlineP50Us))
	fmt.Fprintf(&sb, "| reload of all three slots, warm compilation cache (median of %d) | %.1f ms | — | — | ≤ 100 ms: %s |\n",
		f.ReloadRuns, f.ReloadWarmMs, goal(f.ReloadWarmMs <= 100))
	fmt.Fprintf(&sb, "| start with all four plugins, empty cache (cold) vs populated cache | %.0f ms | %.0f ms (warm) | %s | reported |\n",
		f.ColdStartMs, f.WarmStartMs, ratio(f.ColdStartMs, f.WarmStartMs))
	fmt.Fprintf(&sb, "| linear memory per idle instance (store-null) | %.1f MiB | — | — | reported |\n", f.InstanceMemMiB)
	fmt.Fprintf(&sb, "| RSS per plugin loaded alone (own runtime and compiled code, one instance; mean of 8) | %.1f MiB | — | — | reported |\n", f.PluginRSSMiB)
	fmt.Fprintf(&sb, "| RSS of the server's plugin host (three default plugins, one instance each) | %.1f MiB | — | — | reported |\n", f.HostRSSMiB)
	sb.WriteString("\nThe call deadline is wazero's close-on-context-done, the only way to stop a guest stuck in a loop:\n" +
		"the compiled guest then leaves to Go at every loop iteration (a Go guest also enters a loop at every\n" +
		"function call) to check for cancellation, so its cost grows with the guest's work per call. It is on\n" +
		"by default; `plugins.limits.enforce_deadline: false` turns it off for trusted plugins (a looping plugin\n" +
		"then hangs its request). docs/PLUGINS.md \"Performance\" has the breakdown.\n")
	return sb.String(), nil
}
