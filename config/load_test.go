package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsWithoutFile(t *testing.T) {
	cfg, err := Parse(nil, []string{"POD_NAME=pod-a"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.SegmentSeconds != 6 || cfg.Lease.Duration.D() != 30*time.Second ||
		cfg.Lease.RenewEvery.D() != 10*time.Second || cfg.Plugins.Store.Path != "builtin:store-null" ||
		!cfg.HWAccel.Fallback || cfg.MediaDir != "./media" || cfg.TranscodeDir != "./transcode" {
		t.Fatalf("defaults differ from DESIGN.md: %+v", cfg)
	}
	if cfg.PodName != "pod-a" {
		t.Fatalf("POD_NAME not used: %q", cfg.PodName)
	}
	if cfg.AdvertiseURL != "http://127.0.0.1:8080" {
		t.Fatalf("advertise_url default = %q", cfg.AdvertiseURL)
	}
}

func TestHostnameIsLastFallback(t *testing.T) {
	cfg, err := Parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := os.Hostname()
	if cfg.PodName != h {
		t.Fatalf("pod name %q, want hostname %q", cfg.PodName, h)
	}
}

func TestYAMLAndEnvOverrides(t *testing.T) {
	y := `
listen: 127.0.0.1:9000
pod_name: from-file
segment_seconds: 2
ladder:
  - {name: low, height: 240, video_bitrate: 400k, audio_bitrate: 64000}
lease: {duration: 6s, renew_every: 2s}
plugins:
  store:
    path: builtin:store-redis
    config: {key_prefix: "x:"}
`
	env := []string{
		"WASMHLS_LISTEN=127.0.0.1:9100",
		"WASMHLS_REDIS_URL=redis://127.0.0.1:6379/0",
		"WASMHLS_LEASE_DURATION=3s",
		"WASMHLS_LEASE_RENEW_EVERY=1s",
		"WASMHLS_PLUGINS_STORE_PATH=/plugins/custom.wasm",
		"WASMHLS_PLUGINS_STORE_CAPABILITIES=redis",
		"WASMHLS_TRANSCODE_MAX_JOBS=9",
		"WASMHLS_HWACCEL_FALLBACK=false",
		"WASMHLS_LADDER=[{name: a, height: 360, video_bitrate: 1M, audio_bitrate: 96k}]",
		"POD_NAME=ignored-because-file-sets-it",
		"UNRELATED=1",
	}
	cfg, err := Parse([]byte(y), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9100" || cfg.Redis.URL != "redis://127.0.0.1:6379/0" ||
		cfg.Lease.Duration.D() != 3*time.Second || cfg.Lease.RenewEvery.D() != time.Second ||
		cfg.Plugins.Store.Path != "/plugins/custom.wasm" || cfg.Transcode.MaxJobs != 9 ||
		cfg.HWAccel.Fallback || cfg.PodName != "from-file" || cfg.SegmentSeconds != 2 {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if len(cfg.Plugins.Store.Capabilities) != 1 || cfg.Plugins.Store.Capabilities[0] != "redis" {
		t.Fatalf("capabilities = %v", cfg.Plugins.Store.Capabilities)
	}
	if len(cfg.Ladder) != 1 || cfg.Ladder[0].Name != "a" || cfg.Ladder[0].VideoBitrate != 1_000_000 || cfg.Ladder[0].AudioBitrate != 96_000 {
		t.Fatalf("ladder = %+v", cfg.Ladder)
	}
	if cfg.Plugins.Store.Config["key_prefix"] != "x:" {
		t.Fatalf("plugin config = %v", cfg.Plugins.Store.Config)
	}
	if cfg.AdvertiseURL != "http://127.0.0.1:9100" {
		t.Fatalf("advertise_url = %q", cfg.AdvertiseURL)
	}
}

// Every bad value stops start-up with an error naming the key.
func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        []string
		key        string
	}{
		{"unknown yaml key", "listn: :80", nil, "listn"},
		{"unknown nested key", "lease: {duraton: 3s}", nil, "duraton"},
		{"unknown env key", "", []string{"WASMHLS_LISTN=:80"}, "WASMHLS_LISTN"},
		{"bad duration", "lease: {duration: soon}", nil, "soon"},
		{"bad env duration", "", []string{"WASMHLS_LEASE_DURATION=3"}, "lease.duration"},
		{"bad env int", "", []string{"WASMHLS_SEGMENT_SECONDS=two"}, "segment_seconds"},
		{"listen", "listen: nope", nil, "listen"},
		{"segment_seconds", "segment_seconds: 0", nil, "segment_seconds"},
		{"ladder name", "ladder: [{name: 'A B', height: 360, video_bitrate: 1M, audio_bitrate: 96k}]", nil, "ladder[0].name"},
		{"ladder odd height", "ladder: [{name: a, height: 361, video_bitrate: 1M, audio_bitrate: 96k}]", nil, "ladder[0].height"},
		{"ladder dup", "ladder: [{name: a, height: 360, video_bitrate: 1M, audio_bitrate: 96k}, {name: a, height: 240, video_bitrate: 1M, audio_bitrate: 96k}]", nil, "ladder[1].name"},
		{"bitrate", "ladder: [{name: a, height: 360, video_bitrate: fast, audio_bitrate: 96k}]", nil, "bitrate"},
		{"hwaccel", "hwaccel: {mode: cuda}", nil, "hwaccel.mode"},
		{"redis scheme", "redis: {url: 'http://x'}", nil, "redis.url"},
		{"renew too slow", "lease: {duration: 10s, renew_every: 6s}", nil, "lease.renew_every"},
		{"plugin path", "plugins: {store: {path: ''}}", nil, "plugins.store.path"},
		{"builtin name", "plugins: {cleanup: {path: 'builtin:../x'}}", nil, "plugins.cleanup.path"},
		{"capability", "plugins: {takeover: {path: x.wasm, capabilities: [net]}}", nil, "plugins.takeover.capabilities"},
		{"sha", "plugins: {store: {path: x.wasm, sha256: abc}}", nil, "plugins.store.sha256"},
		{"pool", "plugins: {limits: {pool_size: 0}}", nil, "plugins.limits.pool_size"},
		{"max_jobs", "transcode: {max_jobs: 0}", nil, "transcode.max_jobs"},
		{"preset", "transcode: {preset: warp}", nil, "transcode.preset"},
		{"advertise", "advertise_url: pod-a:8080", nil, "advertise_url"},
		{"log", "log: {format: xml}", nil, "log.format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), append([]string{"POD_NAME=p"}, tc.env...))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

// The repository's config.yaml is the default single-host configuration.
func TestRepositoryConfigLoads(t *testing.T) {
	cfg, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.URL != "" || cfg.Plugins.Store.Path != "builtin:store-null" {
		t.Fatalf("config.yaml is not the single-host default: %+v", cfg)
	}
}
