package session

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
)

// downStore is a MemoryStore that can be switched off: every call then
// fails as a store that cannot be reached does.
type downStore struct {
	*MemoryStore
	down atomic.Bool
}

var errRemoteStoreDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (s *downStore) err() error {
	if s.down.Load() {
		return errRemoteStoreDown
	}
	return nil
}

func (s *downStore) Create(ctx context.Context, rec abi.JobRecord, lease time.Duration) (abi.JobRecord, bool, error) {
	if err := s.err(); err != nil {
		return abi.JobRecord{}, false, err
	}
	return s.MemoryStore.Create(ctx, rec, lease)
}

func (s *downStore) Get(ctx context.Context, id string) (abi.JobRecord, error) {
	if err := s.err(); err != nil {
		return abi.JobRecord{}, err
	}
	return s.MemoryStore.Get(ctx, id)
}

func (s *downStore) Takeover(ctx context.Context, id, owner, url string, lease time.Duration) (abi.JobRecord, error) {
	if err := s.err(); err != nil {
		return abi.JobRecord{}, err
	}
	return s.MemoryStore.Takeover(ctx, id, owner, url, lease)
}

func (s *downStore) List(ctx context.Context, f abi.ListRequest) ([]abi.JobRecord, int64, error) {
	if err := s.err(); err != nil {
		return nil, 0, err
	}
	return s.MemoryStore.List(ctx, f)
}

// With the store down, a non-owner serves existing files, answers
// ErrUnavailable for missing ones (never takes over, even though the lease
// has expired by then), and reports degraded, not unready.
func TestStoreDownFailsSafe(t *testing.T) {
	e := newHAEnv(t)
	a := e.pod(t, "pod-a")
	if _, err := e.get(t, a, 0); err != nil {
		t.Fatal(err)
	}
	ds := &downStore{MemoryStore: e.store}
	b := &haPod{met: NewMetrics(nil), policy: &leasePolicy{}}
	b.m = NewManager(ManagerConfig{Pod: "pod-b", AdvertiseURL: "http://pod-b", TranscodeDir: e.dir,
		Lease: 10 * time.Second, RenewEvery: 3 * time.Second, AheadSegments: 1, MaxJobs: 2, IdleTimeout: time.Minute},
		ds, b.policy, nil, b.met)
	t.Cleanup(func() { b.close(t) })

	if err := b.m.Ready(); err != nil {
		t.Fatalf("Ready with the store up: %v", err)
	}
	ds.down.Store(true)
	e.clock.advance(11 * time.Second) // pod-a's lease is over on the store's clock
	if res, err := e.get(t, b, 0); err != nil || res.Path == "" {
		t.Fatalf("existing segment 0 with the store down: %+v, %v", res, err)
	}
	if _, err := e.get(t, b, 3); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("missing segment 3 with the store down: %v, want ErrUnavailable", err)
	}
	if err := b.m.Ready(); !errors.Is(err, ErrDegraded) {
		t.Errorf("Ready with the store down: %v, want ErrDegraded", err)
	}
	ds.down.Store(false)
	if rec := e.record(t); rec.Owner != "pod-a" || rec.Epoch != 1 {
		t.Errorf("record after the outage: %+v; want pod-a's, untouched", rec)
	}
	if got := metricValue(t, b.met.Takeovers.WithLabelValues(takeoverExpired)); got != 0 {
		t.Errorf("takeovers during the outage: %v", got)
	}
}

func TestTakeoverStart(t *testing.T) {
	for _, c := range []struct{ lcs, n, ahead, want int }{
		{-1, 0, 5, 0},  // nothing made yet
		{3, 5, 5, 4},   // viewer ahead of the last commit, within ahead: resume after it
		{3, 4, 5, 4},   // exactly next
		{3, 20, 5, 20}, // far ahead: a seek, start at the request
		{9, 2, 5, 2},   // behind the last commit: the request itself
	} {
		if got := takeoverStart(abi.JobRecord{LastCompletedSegment: c.lcs}, c.n, c.ahead); got != c.want {
			t.Errorf("takeoverStart(lcs %d, n %d, ahead %d) = %d, want %d", c.lcs, c.n, c.ahead, got, c.want)
		}
	}
}
