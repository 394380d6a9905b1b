package host

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/internal/redistest"
)

func TestRedisCapability(t *testing.T) {
	srv := redistest.Start(t)
	client, err := NewRedis(srv.URL())
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer client.Close()
	p := loadGuest(t, config.PluginSlot{Path: buildGuest(t, "store", "1", "redis"), Capabilities: []string{"redis"}},
		Options{Redis: client})
	ctx := context.Background()
	do := func(req abi.RedisRequest) abi.RedisResponse {
		t.Helper()
		var r abi.RedisResponse
		if err := p.Call(ctx, "redis", req, &r); err != nil {
			t.Fatalf("redis %+v: %v", req, err)
		}
		return r
	}
	// The guest starts with an 8-byte reply buffer, so every reply here goes
	// through the "too small, retry" path: INCR must still run once.
	if r := do(abi.RedisRequest{Args: []any{"INCR", "counter"}}); r.Value != float64(1) {
		t.Fatalf("INCR = %+v", r)
	}
	if v := srv.Client().Get(ctx, "counter").Val(); v != "1" {
		t.Fatalf("counter = %q after one INCR (a retry re-ran the command)", v)
	}
	if r := do(abi.RedisRequest{Args: []any{"GET", "absent"}}); !r.Nil {
		t.Fatalf("GET absent = %+v", r)
	}
	big := int64(1) << 60 // beyond float64's exact range: must reach Redis intact
	if r := do(abi.RedisRequest{Args: []any{"SET", "big", big}}); r.Value != "OK" {
		t.Fatalf("SET = %+v", r)
	}
	if v := srv.Client().Get(ctx, "big").Val(); v != "1152921504606846976" {
		t.Fatalf("big = %q", v)
	}
	script := `redis.call("SET", KEYS[1], ARGV[1]); return {KEYS[1], redis.call("GET", KEYS[1]), 42}`
	r := do(abi.RedisRequest{Script: script, Keys: []string{"{job}:a"}, Args: []any{"v1"}})
	if b, _ := json.Marshal(r.Value); string(b) != `["{job}:a","v1",42]` {
		t.Fatalf("script = %s", b)
	}
	// After SCRIPT FLUSH the host sees NOSCRIPT and loads the script again.
	if err := srv.Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r = do(abi.RedisRequest{Script: script, Keys: []string{"{job}:a"}, Args: []any{"v2"}})
	if b, _ := json.Marshal(r.Value); string(b) != `["{job}:a","v2",42]` {
		t.Fatalf("script after flush = %s", b)
	}
	// A command error is carried in the response, not a host failure.
	if r := do(abi.RedisRequest{Args: []any{"NOSUCHCOMMAND"}}); !strings.Contains(strings.ToLower(r.Error), "unknown command") {
		t.Fatalf("bad command = %+v", r)
	}
	// Redis gone: an error in the response, the plugin keeps working.
	srv.Kill()
	if r := do(abi.RedisRequest{Args: []any{"PING"}}); r.Error == "" {
		t.Fatalf("PING with Redis down = %+v", r)
	}
	srv.Restart()
	if r := do(abi.RedisRequest{Args: []any{"PING"}}); r.Value != "PONG" {
		t.Fatalf("PING after restart = %+v", r)
	}
}

func TestNewRedisErrors(t *testing.T) {
	srv := redistest.Start(t)
	addr := srv.Addr()
	srv.Kill()
	_, err := NewRedis("redis://user:secret@" + addr + "/0")
	if err == nil || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unreachable redis: %v (must name the URL without the password)", err)
	}
	for _, u := range []string{"http://x", "redis-sentinel://" + addr + "/0", "nonsense"} {
		if _, err := NewRedis(u); err == nil {
			t.Errorf("NewRedis(%q) succeeded", u)
		}
	}
	srv.Restart()
	for _, u := range []string{srv.URL(), "redis-cluster://" + addr} {
		c, err := NewRedis(u)
		if strings.HasPrefix(u, "redis-cluster") {
			// A standalone server is not a cluster: the ping fails, naming the URL.
			if err == nil {
				c.Close()
			} else if !strings.Contains(err.Error(), addr) {
				t.Errorf("cluster URL error does not name it: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("NewRedis(%s): %v", u, err)
		}
		c.Close()
	}
}
