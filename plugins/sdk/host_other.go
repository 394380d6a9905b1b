//go:build !wasip1

package sdk

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Outside wasm there is no host: log to slog and use the local clock so that
// plugin logic can be unit tested natively.

func hostLog(level int32, msg string) {
	slog.Log(context.Background(), slog.Level(level), msg, "plugin", "native")
}

func hostNowMs() int64 { return time.Now().UnixMilli() }

func hostConfig() ([]byte, error) {
	return nil, errors.New("config capability: only available inside a wasmhls plugin (GOOS=wasip1)")
}
