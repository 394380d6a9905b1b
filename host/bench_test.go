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
// Op noop is the floor (no guest allocation, no JSON in the guest);
// spin1000 adds 1000 iterations of an empty loop, which prices one loop
// iteration under the deadline; echo
// adds one JSON encode of a small envelope in the guest, which shows how
// the deadline's cost grows with guest work.
func BenchmarkCall(b *testing.B) {
	for _, tc := range []struct {
		name       string
		noDeadline bool
	}{{"deadline", false}, {"no-deadline", true}} {
		for _, op := range []string{"noop", "spin1000", "echo"} {
			b.Run(tc.name+"/"+op, func(b *testing.B) {
				p := loadGuest(b, config.PluginSlot{}, Options{NoCallDeadline: tc.noDeadline})
				req := json.RawMessage(`{"id":"job-1"}`)
				ctx := context.Background()
				var out map[string]any
				raw := op != "echo" // no result to decode
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					var err error
					if raw {
						err = p.Call(ctx, op, req, nil)
					} else {
						err = p.Call(ctx, op, req, &out)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkStoreNullRenew is the built-in store-null's renew through the
// host and the typed client, with and without the call deadline: the
// figure pluginbench reports, here for profiling (-cpuprofile).
func BenchmarkStoreNullRenew(b *testing.B) {
	for _, tc := range []struct {
		name       string
		noDeadline bool
	}{{"deadline", false}, {"no-deadline", true}} {
		b.Run(tc.name, func(b *testing.B) {
			p := loadGuest(b, config.PluginSlot{Path: "builtin:store-null"}, Options{NoCallDeadline: tc.noDeadline})
			s := NewStoreClient(p)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.Renew(ctx, "job", "pod", 1, 30*time.Second, abi.Progress{}); err != nil {
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
