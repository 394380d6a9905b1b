package host

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/internal/redistest"
)

// BenchmarkCall measures one echo call through the host with and without
// the call deadline (wazero's close-on-context-done). Figures only; the
// report is bench/cmd/pluginbench's.
func BenchmarkCall(b *testing.B) {
	for _, tc := range []struct {
		name       string
		noDeadline bool
	}{{"deadline", false}, {"no-deadline", true}} {
		b.Run(tc.name, func(b *testing.B) {
			p := loadGuest(b, config.PluginSlot{}, Options{NoCallDeadline: tc.noDeadline})
			req := json.RawMessage(`{"id":"job-1"}`)
			ctx := context.Background()
			var out map[string]any
			b.ResetTimer()
			for range b.N {
				if err := p.Call(ctx, "echo", req, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreRedisGet is store-redis' get through the host on a local
// redis-server: host ↔ guest ↔ host redis capability.
func BenchmarkStoreRedisGet(b *testing.B) {
	srv := redistest.Start(b)
	client, err := NewRedis(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	p, err := Load(context.Background(), "store", config.PluginSlot{Path: "builtin:store-redis"},
		Options{Redis: client, CacheDir: cacheDir, NoCallDeadline: os.Getenv("NODEADLINE") != ""})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	s := NewStoreClient(p)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, abi.JobRecord{ID: "j", Owner: "a"}, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.Get(ctx, "j"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadWarm is one Load of the test guest with a warm in-memory
// compilation cache (the reload path).
func BenchmarkLoadWarm(b *testing.B) {
	path := buildGuest(b, "store", "1", "")
	cache := wazero.NewCompilationCache()
	defer cache.Close(context.Background())
	ctx := context.Background()
	for range b.N {
		p, err := load(ctx, "store", config.PluginSlot{Path: path}, mustRead(b, path), "", Options{cache: cache, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		p.Close(ctx)
	}
}

func mustRead(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
