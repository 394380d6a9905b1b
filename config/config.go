// Package config is wasmhls' typed configuration: one YAML file plus
// WASMHLS_* environment overrides (see load.go), validated at start-up.
package config

import "time"

// Config is the whole configuration. Every key is documented in config.yaml.
type Config struct {
	Listen         string    `yaml:"listen"`
	PodName        string    `yaml:"pod_name"`
	AdvertiseURL   string    `yaml:"advertise_url"`
	MediaDir       string    `yaml:"media_dir"`
	TranscodeDir   string    `yaml:"transcode_dir"`
	SegmentSeconds int       `yaml:"segment_seconds"`
	Ladder         []Rung    `yaml:"ladder"`
	HWAccel        HWAccel   `yaml:"hwaccel"`
	Redis          Redis     `yaml:"redis"`
	Lease          Lease     `yaml:"lease"`
	Plugins        Plugins   `yaml:"plugins"`
	Transcode      Transcode `yaml:"transcode"`
	Cleanup        Cleanup   `yaml:"cleanup"`
	Admin          Admin     `yaml:"admin"`
	Log            Log       `yaml:"log"`
}

// Rung is one ABR ladder entry. Bitrates are bits/s; YAML accepts plain
// integers or suffixed strings ("2500k", "3M").
type Rung struct {
	Name         string  `yaml:"name"`
	Height       int     `yaml:"height"`
	VideoBitrate Bitrate `yaml:"video_bitrate"`
	AudioBitrate Bitrate `yaml:"audio_bitrate"`
}

// Bitrate is bits per second.
type Bitrate int

type HWAccel struct {
	Mode     string `yaml:"mode"` // auto|vaapi|nvenc|qsv|none
	Device   string `yaml:"device"`
	Fallback bool   `yaml:"fallback"`
}

type Redis struct {
	URL string `yaml:"url"`
}

type Lease struct {
	Duration   Duration `yaml:"duration"`
	RenewEvery Duration `yaml:"renew_every"`
}

// Duration is a time.Duration that YAML writes as "30s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

type Plugins struct {
	Store    PluginSlot   `yaml:"store"`
	Takeover PluginSlot   `yaml:"takeover"`
	Cleanup  PluginSlot   `yaml:"cleanup"`
	Limits   PluginLimits `yaml:"limits"`
	// CacheDir holds wazero's compilation cache; empty: a directory under
	// the user's cache dir.
	CacheDir string `yaml:"cache_dir"`
}

// PluginSlot configures one plugin slot.
type PluginSlot struct {
	// Path is a .wasm file or builtin:NAME.
	Path string `yaml:"path"`
	// SHA256, when set, pins the file: a mismatch refuses the load.
	SHA256 string `yaml:"sha256"`
	// Capabilities granted beyond log, clock and config (e.g. [redis]).
	// builtin:store-redis is granted redis by default.
	Capabilities []string `yaml:"capabilities"`
	// Config is handed to the plugin through the config capability as JSON.
	Config map[string]any `yaml:"config"`
}

type PluginLimits struct {
	MemoryMB     int      `yaml:"memory_mb"`
	CallTimeout  Duration `yaml:"call_timeout"`
	PoolSize     int      `yaml:"pool_size"`
	RecycleAfter int      `yaml:"recycle_after"` // calls per instance before it is replaced
	MaxMessageKB int      `yaml:"max_message_kb"`
	// EnforceDeadline keeps call_timeout enforceable on a guest stuck in a
	// loop (wazero's close-on-context-done). Off, calls are faster but a
	// looping plugin hangs its request goroutine for ever: only for
	// trusted plugins. The server maps it to host.Options.NoCallDeadline.
	EnforceDeadline bool `yaml:"enforce_deadline"`
}

type Transcode struct {
	MaxJobs       int      `yaml:"max_jobs"`
	AheadSegments int      `yaml:"ahead_segments"`
	IdleTimeout   Duration `yaml:"idle_timeout"`
	Preset        string   `yaml:"preset"`
}

type Cleanup struct {
	Interval       Duration `yaml:"interval"`
	MaxAge         Duration `yaml:"max_age"`
	HighWaterBytes int64    `yaml:"high_water_bytes"` // 0: no disk limit
}

type Admin struct {
	Token string `yaml:"token"`
}

type Log struct {
	Format string `yaml:"format"` // json|text
	Level  string `yaml:"level"`  // debug|info|warn|error
}

// Default returns the single-host defaults of DESIGN.md.
func Default() Config {
	return Config{
		Listen:         ":8080",
		MediaDir:       "./media",
		TranscodeDir:   "./transcode",
		SegmentSeconds: 6,
		Ladder: []Rung{
			{Name: "1080p", Height: 1080, VideoBitrate: 5_000_000, AudioBitrate: 128_000},
			{Name: "720p", Height: 720, VideoBitrate: 2_800_000, AudioBitrate: 128_000},
			{Name: "480p", Height: 480, VideoBitrate: 1_400_000, AudioBitrate: 96_000},
			{Name: "360p", Height: 360, VideoBitrate: 800_000, AudioBitrate: 96_000},
		},
		HWAccel: HWAccel{Mode: "auto", Fallback: true},
		Lease:   Lease{Duration: Duration(30 * time.Second), RenewEvery: Duration(10 * time.Second)},
		Plugins: Plugins{
			Store:    PluginSlot{Path: "builtin:store-null"},
			Takeover: PluginSlot{Path: "builtin:takeover-lease"},
			Cleanup:  PluginSlot{Path: "builtin:cleanup-lease"},
			Limits: PluginLimits{MemoryMB: 64, CallTimeout: Duration(2 * time.Second), PoolSize: 4,
				RecycleAfter: 10000, MaxMessageKB: 1024, EnforceDeadline: true},
		},
		Transcode: Transcode{MaxJobs: 4, AheadSegments: 5, IdleTimeout: Duration(60 * time.Second), Preset: "veryfast"},
		Cleanup:   Cleanup{Interval: Duration(5 * time.Minute), MaxAge: Duration(24 * time.Hour)},
		Log:       Log{Format: "json", Level: "info"},
	}
}
