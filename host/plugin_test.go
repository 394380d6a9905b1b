package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/session"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLoadDescribeAndCapabilities(t *testing.T) {
	var logs syncBuffer
	path := buildGuest(t, "store", "1", "")
	p := loadGuest(t, config.PluginSlot{Path: path, Config: map[string]any{"key_prefix": "x:", "n": 3}},
		Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := context.Background()

	d := p.Description()
	if d.Kind != "store" || d.Name != "test-guest" || d.Version != "0.0.1" || d.ABI != abi.Version {
		t.Fatalf("description = %+v", d)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if p.SHA256() != hex.EncodeToString(sum[:]) {
		t.Fatalf("SHA256 = %s", p.SHA256())
	}

	var echo map[string]any
	if err := p.Call(ctx, "echo", map[string]any{"hello": "world"}, &echo); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if echo["hello"] != "world" {
		t.Fatalf("echo = %v", echo)
	}
	var cfg map[string]any
	if err := p.Call(ctx, "config", nil, &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	if cfg["key_prefix"] != "x:" || cfg["n"] != float64(3) {
		t.Fatalf("config capability returned %v", cfg)
	}
	var clock struct {
		NowMs int64 `json:"now_ms"`
	}
	if err := p.Call(ctx, "clock", nil, &clock); err != nil || clock.NowMs < 1_700_000_000_000 {
		t.Fatalf("clock: %v, %d", err, clock.NowMs)
	}
	if err := p.Call(ctx, "log", json.RawMessage(`"hello from the guest"`), nil); err != nil {
		t.Fatalf("log: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, `hello from the guest`) || !strings.Contains(l, `"plugin":"`+path) || !strings.Contains(l, `"level":"WARN"`) {
		t.Fatalf("guest log line not in slog with the plugin name and level: %s", l)
	}
}

func TestStatusMapping(t *testing.T) {
	p := loadGuest(t, config.PluginSlot{}, Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		env     string
		want    error
		message string
	}{
		{`{"status":"ok"}`, nil, ""},
		{`{"status":"lost"}`, session.ErrLost, ""},
		{`{"status":"not_found"}`, session.ErrNotFound, ""},
		{`{"status":"conflict"}`, session.ErrLeaseValid, ""},
		{`{"status":"error","error":"disk on fire"}`, nil, "disk on fire"},
		{`{"status":"bad_op","error":"no such op"}`, nil, "no such op"},
		{`{"status":"weird"}`, ErrPluginFailed, "unknown envelope status"},
	} {
		err := p.Call(ctx, "status", json.RawMessage(tc.env), nil)
		switch {
		case tc.want == nil && tc.message == "":
			if err != nil {
				t.Errorf("%s: %v", tc.env, err)
			}
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: got %v, want %v", tc.env, err, tc.want)
		case tc.message != "" && (err == nil || !strings.Contains(err.Error(), tc.message)):
			t.Errorf("%s: got %v, want message %q", tc.env, err, tc.message)
		}
		if err != nil && !strings.Contains(err.Error(), "status") && !strings.Contains(err.Error(), p.path) {
			t.Errorf("%s: error %q does not name the plugin", tc.env, err)
		}
	}
	// ok without a result where one is expected is a failure, not a zero value.
	var out map[string]any
	if err := p.Call(ctx, "status", json.RawMessage(`{"status":"ok"}`), &out); !errors.Is(err, ErrPluginFailed) {
		t.Fatalf("ok without result: %v", err)
	}
}

func TestStoreClientOverPlugin(t *testing.T) {
	s := NewStoreClient(loadGuest(t, config.PluginSlot{}, Options{}))
	ctx := context.Background()
	rec, err := s.Get(ctx, "job-1")
	if err != nil || rec.ID != "job-1" || rec.Epoch != 7 {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	rec, err = s.Takeover(ctx, "j", "pod-b", "http://b", 0)
	if !errors.Is(err, session.ErrLeaseValid) || rec.Owner != "pod-a" || rec.Epoch != 3 {
		t.Fatalf("Takeover conflict = %+v, %v", rec, err)
	}
	if _, err := s.Renew(ctx, "j", "pod-b", 1, 0, abi.Progress{}); !errors.Is(err, session.ErrLost) {
		t.Fatalf("Renew: %v", err)
	}
	// An operation the guest does not know: bad_op, an error but not a failure.
	if err := s.CommitSegment(ctx, "j", "pod-b", 1, 0, 0); err == nil || errors.Is(err, ErrPluginFailed) ||
		!strings.Contains(err.Error(), "unknown operation commit_segment") {
		t.Fatalf("CommitSegment on a guest without it: %v", err)
	}
}
