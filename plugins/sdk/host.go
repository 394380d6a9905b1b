package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Log writes msg to the server's log, attributed to this plugin (capability
// "log", always granted). level uses slog's values: slog.LevelDebug (-4),
// LevelInfo (0), LevelWarn (4), LevelError (8).
func Log(level slog.Level, msg string) { hostLog(int32(level), msg) }

// Logf is Log with formatting.
func Logf(level slog.Level, format string, a ...any) { Log(level, fmt.Sprintf(format, a...)) }

// NowMs is the host's wall clock in unix milliseconds (capability "clock").
// A store must not judge leases by it: use the store's own clock (Redis
// TIME), as the host's clock of one pod may be skewed against another's.
func NowMs() int64 { return hostNowMs() }

// Config decodes the plugin's config block (config.yaml
// plugins.<slot>.config, handed over as JSON by capability "config") into v.
// An absent block leaves v unchanged.
func Config(v any) error {
	b, err := hostConfig()
	if err != nil {
		return err
	}
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("plugin config: %w", err)
	}
	return nil
}

// StrictConfig is Config that refuses unknown keys, so that a typo in
// config.yaml fails the load with the key's name instead of being ignored.
func StrictConfig(v any) error {
	b, err := hostConfig()
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}

func decodeStrict(b []byte, v any) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("plugin config: %w", err)
	}
	return nil
}
