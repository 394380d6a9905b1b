package redistest

import (
	"context"
	"testing"
)

func TestStartKillRestart(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	if got := c.Get(ctx, "k").Val(); got != "v" {
		t.Fatalf("get = %q, want v", got)
	}
	if s.URL() != "redis://"+s.Addr() {
		t.Fatalf("URL %q does not match Addr %q", s.URL(), s.Addr())
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	// No persistence: the restarted server is empty.
	if n := c.Exists(ctx, "k").Val(); n != 0 {
		t.Fatalf("key survived a restart without persistence")
	}
}
