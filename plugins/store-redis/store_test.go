//go:build !wasip1

package main

// Native tests of the Lua scripts: the same redisStore the plugin runs,
// talking to a real redis-server through go-redis instead of the host's
// capability. The suite through the host (wasm) is in
// plugins/conformance; these catch script bugs without wazero in the way.

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/internal/redistest"
	"github.com/wasmhls/wasmhls/plugins/conformance"
	"github.com/wasmhls/wasmhls/plugins/sdk"
	"github.com/wasmhls/wasmhls/session"
)

type goRedisConn struct{ c *goredis.Client }

func (g goRedisConn) eval(script string, keys []string, args ...any) (json.RawMessage, error) {
	v, err := g.c.Eval(context.Background(), script, keys, args...).Result()
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func (g goRedisConn) do(args ...any) (json.RawMessage, error) {
	v, err := g.c.Do(context.Background(), args...).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// nativeStore adapts an sdk.Store to session.Store the way host.StoreClient
// maps envelope statuses, for these native tests only.
type nativeStore struct{ s sdk.Store }

func mapErr(err error) error {
	var se sdk.StatusError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Status {
	case abi.StatusLost:
		return errors.Join(session.ErrLost, err)
	case abi.StatusNotFound:
		return errors.Join(session.ErrNotFound, err)
	case abi.StatusConflict:
		return errors.Join(session.ErrLeaseValid, err)
	}
	return err
}

func (n nativeStore) Create(_ context.Context, rec abi.JobRecord, lease time.Duration) (abi.JobRecord, bool, error) {
	r, err := n.s.Create(abi.CreateRequest{Record: rec, LeaseMs: lease.Milliseconds()})
	return r.Record, r.Created, mapErr(err)
}

func (n nativeStore) Get(_ context.Context, id string) (abi.JobRecord, error) {
	r, err := n.s.Get(abi.GetRequest{ID: id})
	return r.Record, mapErr(err)
}

func (n nativeStore) Renew(_ context.Context, id, owner string, epoch int64, lease time.Duration, p abi.Progress) (int64, error) {
	r, err := n.s.Renew(abi.RenewRequest{ID: id, Owner: owner, Epoch: epoch, LeaseMs: lease.Milliseconds(), Progress: p})
	return r.LeaseExpiresMs, mapErr(err)
}

func (n nativeStore) CommitSegment(_ context.Context, id, owner string, epoch int64, seg int, off int64) error {
	return mapErr(n.s.CommitSegment(abi.CommitSegmentRequest{ID: id, Owner: owner, Epoch: epoch, Segment: seg, OffsetMs: off}))
}

func (n nativeStore) Takeover(_ context.Context, id, owner, url string, lease time.Duration) (abi.JobRecord, error) {
	r, err := n.s.Takeover(abi.TakeoverRequest{ID: id, Owner: owner, OwnerURL: url, LeaseMs: lease.Milliseconds()})
	return r.Record, mapErr(err)
}

func (n nativeStore) Release(_ context.Context, id, owner string, epoch int64) error {
	return mapErr(n.s.Release(abi.ReleaseRequest{ID: id, Owner: owner, Epoch: epoch}))
}

func (n nativeStore) Delete(_ context.Context, id, owner string, epoch int64) error {
	return mapErr(n.s.Delete(abi.DeleteRequest{ID: id, Owner: owner, Epoch: epoch}))
}

func (n nativeStore) List(_ context.Context, f abi.ListRequest) ([]abi.JobRecord, int64, error) {
	r, err := n.s.List(f)
	return r.Records, r.NowMs, mapErr(err)
}

func (n nativeStore) TryLock(_ context.Context, name, owner string, ttl time.Duration) (bool, error) {
	r, err := n.s.TryLock(abi.TryLockRequest{Name: name, Owner: owner, TTLMs: ttl.Milliseconds()})
	return r.Acquired, mapErr(err)
}

func newStore(t *testing.T) (*redisStore, *redistest.Server) {
	srv := redistest.Start(t)
	return &redisStore{cfg: defaultConfig(), c: goRedisConn{c: srv.Client()}}, srv
}

func TestScriptsConformance(t *testing.T) {
	s, _ := newStore(t)
	if err := s.SelfTest(); err != nil {
		t.Fatalf("self test: %v", err)
	}
	conformance.RunT(t, nativeStore{s: s}, conformance.Options{})
}

// Keys are hash-tagged per job and expire on their own: lease + retention.
func TestKeysTaggedAndExpiring(t *testing.T) {
	s, srv := newStore(t)
	s.cfg.KeyPrefix = "hls-test"
	ctx := context.Background()
	if _, err := s.Create(abi.CreateRequest{Record: abi.JobRecord{ID: "j1", Owner: "a"}, LeaseMs: 5000}); err != nil {
		t.Fatalf("create: %v", err)
	}
	c := srv.Client()
	ttl, err := c.PTTL(ctx, "{hls-test:j1}").Result()
	if err != nil {
		t.Fatalf("pttl: %v", err)
	}
	want := time.Duration(5000+s.cfg.RetentionMs) * time.Millisecond
	if ttl <= 0 || ttl > want {
		t.Fatalf("record TTL %v, want in (0, %v]", ttl, want)
	}
	if n := c.ZCard(ctx, "{hls-test}:jobs").Val(); n != 1 {
		t.Fatalf("index {hls-test}:jobs has %d ids, want 1", n)
	}
	// The record expiring by itself (simulated by deleting the key) is
	// pruned from the index by the next list.
	c.Del(ctx, "{hls-test:j1}")
	resp, err := s.List(abi.ListRequest{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(resp.Records) != 0 || resp.NowMs <= 0 {
		t.Fatalf("list after expiry: %d records, now_ms %d", len(resp.Records), resp.NowMs)
	}
	if n := c.ZCard(ctx, "{hls-test}:jobs").Val(); n != 0 {
		t.Fatalf("index still has %d ids after list pruned", n)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []config{
		{KeyPrefix: "", RetentionMs: 5000, ListBatch: 1},
		{KeyPrefix: "a{b", RetentionMs: 5000, ListBatch: 1},
		{KeyPrefix: "a", RetentionMs: 5, ListBatch: 1},
		{KeyPrefix: "a", RetentionMs: 5000, ListBatch: 0},
	} {
		if err := c.validate(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if err := defaultConfig().validate(); err != nil {
		t.Errorf("default config refused: %v", err)
	}
}

// SelfTest loads every script, so the first job after a load does not pay
// a NOSCRIPT round trip; a Redis that forgot them (SCRIPT FLUSH) still
// works through Eval's fallback.
func TestSelfTestLoadsScripts(t *testing.T) {
	s, srv := newStore(t)
	ctx := context.Background()
	shas := make([]string, len(allScripts))
	for i, src := range allScripts {
		shas[i] = scriptSHA1(src)
	}
	before, err := srv.Client().ScriptExists(ctx, shas...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range before {
		if ok {
			t.Fatalf("script %d already loaded before SelfTest", i)
		}
	}
	if err := s.SelfTest(); err != nil {
		t.Fatalf("SelfTest: %v", err)
	}
	after, err := srv.Client().ScriptExists(ctx, shas...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range after {
		if !ok {
			t.Errorf("script %d not loaded by SelfTest", i)
		}
	}
}

func scriptSHA1(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}
