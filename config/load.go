package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment override: WASMHLS_ + the upper-cased
// key path joined by "_" (WASMHLS_LEASE_RENEW_EVERY, WASMHLS_PLUGINS_STORE_PATH).
const EnvPrefix = "WASMHLS_"

// Load reads the YAML file at path (a missing file is an error unless path
// is empty: then only defaults and the environment count), applies the
// process environment and validates the result.
func Load(path string) (Config, error) {
	var data []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		data = b
	}
	return Parse(data, os.Environ())
}

// Parse builds a Config from YAML bytes and an environment (KEY=VALUE
// strings, as os.Environ returns). Unknown YAML keys and unknown WASMHLS_*
// variables are errors naming the key.
func Parse(yamlData []byte, environ []string) (Config, error) {
	cfg := Default()
	if len(bytes.TrimSpace(yamlData)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(yamlData))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("config: %w", err)
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			env[k] = v
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	if cfg.PodName == "" {
		cfg.PodName = env["POD_NAME"]
	}
	if cfg.PodName == "" {
		h, err := os.Hostname()
		if err != nil {
			return Config{}, fmt.Errorf("config: pod_name is empty, POD_NAME is unset and the hostname is unknown: %w", err)
		}
		cfg.PodName = h
	}
	if cfg.AdvertiseURL == "" {
		cfg.AdvertiseURL = defaultAdvertiseURL(cfg.Listen)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// defaultAdvertiseURL is where other pods reach this one when nobody said:
// the listen port on loopback, which is right for a single host only.
func defaultAdvertiseURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// envLeaf is one overridable key: its YAML path and where it lives.
type envLeaf struct {
	key   string // yaml path joined by "."
	value reflect.Value
}

// envLeaves lists every key reachable from v, structs walked into, anything
// else (scalars, lists, maps) a leaf.
func envLeaves(v reflect.Value, prefix string, out map[string]envLeaf) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(Duration(0)) {
			envLeaves(fv, key, out)
			continue
		}
		envName := EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		out[envName] = envLeaf{key: key, value: fv}
	}
}

func applyEnv(cfg *Config, env map[string]string) error {
	leaves := map[string]envLeaf{}
	envLeaves(reflect.ValueOf(cfg).Elem(), "", leaves)
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		leaf, ok := leaves[name]
		if !ok {
			return fmt.Errorf("config: unknown environment override %s (no such key)", name)
		}
		if err := setFromString(leaf.value, env[name]); err != nil {
			return fmt.Errorf("config: %s (key %s): %w", name, leaf.key, err)
		}
	}
	return nil
}

// setFromString parses s into v by v's type. Lists and maps take YAML
// ("[a, b]", "{k: v}") and lists of strings also take "a,b".
func setFromString(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		v.Set(reflect.ValueOf(Duration(d)))
		return nil
	case Bitrate:
		b, err := parseBitrate(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(b))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", s)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String && !strings.HasPrefix(strings.TrimSpace(s), "[") {
			var parts []string
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					parts = append(parts, p)
				}
			}
			v.Set(reflect.ValueOf(parts))
			return nil
		}
		fallthrough
	case reflect.Map:
		dec := yaml.NewDecoder(strings.NewReader(s))
		dec.KnownFields(true)
		p := reflect.New(v.Type())
		if err := dec.Decode(p.Interface()); err != nil {
			return fmt.Errorf("invalid YAML value: %w", err)
		}
		v.Set(p.Elem())
	default:
		return fmt.Errorf("cannot override a %s from the environment", v.Kind())
	}
	return nil
}

// UnmarshalYAML accepts Go duration strings ("30s", "1m30s").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML accepts 2500000, "2500k" or "2.5M".
func (b *Bitrate) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseBitrate(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

func parseBitrate(s string) (Bitrate, error) {
	s = strings.TrimSpace(s)
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("invalid bitrate %q (want bits/s like 2500000, \"2500k\" or \"2.5M\")", s)
	}
	return Bitrate(f * mult), nil
}

var (
	rungNameRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	builtinNameRe = regexp.MustCompile(`^builtin:[a-z0-9-]+$`)
	sha256Re      = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks every key; the error names the first bad key.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen", "want host:port, got %q", c.Listen)
	}
	if c.AdvertiseURL != "" {
		u, err := url.Parse(c.AdvertiseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("advertise_url", "want http(s)://host:port, got %q", c.AdvertiseURL)
		}
	}
	if c.MediaDir == "" {
		return bad("media_dir", "must not be empty")
	}
	if c.TranscodeDir == "" {
		return bad("transcode_dir", "must not be empty")
	}
	if c.SegmentSeconds < 1 || c.SegmentSeconds > 60 {
		return bad("segment_seconds", "must be 1..60, got %d", c.SegmentSeconds)
	}
	if len(c.Ladder) == 0 {
		return bad("ladder", "needs at least one rung")
	}
	seen := map[string]bool{}
	for i, r := range c.Ladder {
		key := fmt.Sprintf("ladder[%d]", i)
		if !rungNameRe.MatchString(r.Name) {
			return bad(key+".name", "want lower-case letters, digits, '-' or '_' (max 32), got %q", r.Name)
		}
		if seen[r.Name] {
			return bad(key+".name", "duplicate rung name %q", r.Name)
		}
		seen[r.Name] = true
		if r.Height < 64 || r.Height > 4320 || r.Height%2 != 0 {
			return bad(key+".height", "must be an even number in 64..4320, got %d", r.Height)
		}
		if r.VideoBitrate <= 0 {
			return bad(key+".video_bitrate", "must be positive")
		}
		if r.AudioBitrate <= 0 {
			return bad(key+".audio_bitrate", "must be positive")
		}
	}
	switch c.HWAccel.Mode {
	case "auto", "vaapi", "nvenc", "qsv", "none":
	default:
		return bad("hwaccel.mode", "want auto, vaapi, nvenc, qsv or none, got %q", c.HWAccel.Mode)
	}
	if c.Redis.URL != "" {
		u, err := url.Parse(c.Redis.URL)
		if err != nil {
			return bad("redis.url", "%v", err)
		}
		switch u.Scheme {
		case "redis", "rediss", "unix", "redis-sentinel", "redis-cluster":
		default:
			return bad("redis.url", "want redis://, rediss://, unix://, redis-sentinel:// or redis-cluster://, got %q", c.Redis.URL)
		}
	}
	if c.Lease.Duration <= 0 {
		return bad("lease.duration", "must be positive")
	}
	if c.Lease.RenewEvery <= 0 || c.Lease.RenewEvery.D()*2 > c.Lease.Duration.D() {
		return bad("lease.renew_every", "must be positive and at most half of lease.duration (%s), got %s",
			c.Lease.Duration.D(), c.Lease.RenewEvery.D())
	}
	for _, s := range []struct {
		name string
		slot PluginSlot
	}{{"store", c.Plugins.Store}, {"takeover", c.Plugins.Takeover}, {"cleanup", c.Plugins.Cleanup}} {
		key := "plugins." + s.name
		p := s.slot.Path
		switch {
		case p == "":
			return bad(key+".path", "must not be empty (a .wasm file or builtin:NAME)")
		case strings.HasPrefix(p, "builtin:") && !builtinNameRe.MatchString(p):
			return bad(key+".path", "invalid builtin plugin name %q", p)
		}
		if s.slot.SHA256 != "" && !sha256Re.MatchString(s.slot.SHA256) {
			return bad(key+".sha256", "want 64 lower-case hex digits")
		}
		for _, cp := range s.slot.Capabilities {
			switch cp {
			case "log", "clock", "config", "redis":
			default:
				return bad(key+".capabilities", "unknown capability %q (log, clock, config, redis)", cp)
			}
		}
	}
	l := c.Plugins.Limits
	switch {
	case l.MemoryMB < 1 || l.MemoryMB > 4096:
		return bad("plugins.limits.memory_mb", "must be 1..4096, got %d", l.MemoryMB)
	case l.CallTimeout <= 0:
		return bad("plugins.limits.call_timeout", "must be positive")
	case l.PoolSize < 1 || l.PoolSize > 256:
		return bad("plugins.limits.pool_size", "must be 1..256, got %d", l.PoolSize)
	case l.RecycleAfter < 1:
		return bad("plugins.limits.recycle_after", "must be at least 1")
	case l.MaxMessageKB < 1:
		return bad("plugins.limits.max_message_kb", "must be at least 1")
	}
	switch {
	case c.Transcode.MaxJobs < 1:
		return bad("transcode.max_jobs", "must be at least 1")
	case c.Transcode.AheadSegments < 1:
		return bad("transcode.ahead_segments", "must be at least 1")
	case c.Transcode.IdleTimeout <= 0:
		return bad("transcode.idle_timeout", "must be positive")
	}
	switch c.Transcode.Preset {
	case "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow":
	default:
		return bad("transcode.preset", "unknown x264 preset %q", c.Transcode.Preset)
	}
	switch {
	case c.Cleanup.Interval <= 0:
		return bad("cleanup.interval", "must be positive")
	case c.Cleanup.MaxAge <= 0:
		return bad("cleanup.max_age", "must be positive")
	case c.Cleanup.HighWaterBytes < 0:
		return bad("cleanup.high_water_bytes", "must not be negative")
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return bad("log.format", "want json or text, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	return nil
}
