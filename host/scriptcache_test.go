package host

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/internal/redistest"
)

// cmdLog records the names of the commands a go-redis client sends.
type cmdLog struct {
	mu    sync.Mutex
	names []string
}

func (l *cmdLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.names
	l.names = nil
	return out
}

func (l *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.mu.Lock()
		name := strings.ToLower(cmd.Name())
		if name == "script" && len(cmd.Args()) > 1 {
			name += " " + strings.ToLower(cmd.Args()[1].(string))
		}
		l.names = append(l.names, name)
		l.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (l *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// store-redis runs its scripts with EVALSHA and a SHA the guest computed:
// a get is one EVALSHA (the script text is not sent; self_test loaded the
// scripts when the plugin was loaded), and after Redis
// forgot its scripts (SCRIPT FLUSH, as after a restart) the guest's
// NOSCRIPT fallback sends the text once and the host loads it.
func TestStoreRedisUsesEvalSHA(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	client, err := NewRedis(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	log := &cmdLog{}
	client.AddHook(log)
	p, err := Load(ctx, "store", config.PluginSlot{Path: pluginPath(t, "store-redis"), Capabilities: []string{abi.CapRedis}},
		Options{Redis: client, CacheDir: cacheDir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("load store-redis: %v", err)
	}
	defer p.Close(ctx)
	s := NewStoreClient(p)
	if _, _, err := s.Create(ctx, abi.JobRecord{ID: "j", Owner: "pod-a", LastCompletedSegment: -1, LastRequestedSegment: -1}, time.Minute); err != nil {
		t.Fatalf("create: %v", err)
	}
	get := func(want []string) {
		t.Helper()
		log.take()
		rec, err := s.Get(ctx, "j")
		if err != nil || rec.ID != "j" || rec.Owner != "pod-a" || rec.LastCompletedSegment != -1 || rec.NowMs == 0 {
			t.Fatalf("get: %+v, %v", rec, err)
		}
		if got := log.take(); !slices.Equal(got, want) {
			t.Fatalf("get sent %v, want %v", got, want)
		}
	}
	// The load-time self_test loaded every script: even the first get is
	// one EVALSHA.
	get([]string{"evalsha"})
	get([]string{"evalsha"})
	if err := srv.Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	get([]string{"evalsha", "evalsha", "script load", "evalsha"})
	get([]string{"evalsha"})
}
