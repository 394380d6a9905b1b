package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wasmhls/wasmhls/abi"
)

// leaseTestStore is the real in-process store (MemoryStore, on a clock the
// test drives) behind a fault switch: while down is set every call fails as
// an unreachable store would. Hooks let a test act inside a call (a slow
// reply, a record created between two reads).
type leaseTestStore struct {
	*MemoryStore
	clock *renewTestClock

	mu       sync.Mutex
	down     error       // non-nil: every call fails with it
	onRenew  func()      // called at the start of Renew
	renews   int         // Renew calls that reached the store
	lists    int         // List calls made
	listHook func(n int) // called at the start of List with the call number
}

var errStoreDown = errors.New("dial tcp 127.0.0.1:1: connect: connection refused")

func newLeaseTestStore(c *renewTestClock) *leaseTestStore {
	return &leaseTestStore{MemoryStore: NewMemoryStore(c.Now), clock: c}
}

func (s *leaseTestStore) setDown(err error) {
	s.mu.Lock()
	s.down = err
	s.mu.Unlock()
}

func (s *leaseTestStore) isDown() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *leaseTestStore) renewCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renews
}

func (s *leaseTestStore) Create(ctx context.Context, rec abi.JobRecord, lease time.Duration) (abi.JobRecord, bool, error) {
	if err := s.isDown(); err != nil {
		return abi.JobRecord{}, false, err
	}
	return s.MemoryStore.Create(ctx, rec, lease)
}

func (s *leaseTestStore) Get(ctx context.Context, id string) (abi.JobRecord, error) {
	if err := s.isDown(); err != nil {
		return abi.JobRecord{}, err
	}
	return s.MemoryStore.Get(ctx, id)
}

func (s *leaseTestStore) Renew(ctx context.Context, id, owner string, epoch int64, lease time.Duration, p abi.Progress) (int64, error) {
	s.mu.Lock()
	hook := s.onRenew
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err := s.isDown(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.renews++
	s.mu.Unlock()
	return s.MemoryStore.Renew(ctx, id, owner, epoch, lease, p)
}

func (s *leaseTestStore) CommitSegment(ctx context.Context, id, owner string, epoch int64, n int, offsetMs int64) error {
	if err := s.isDown(); err != nil {
		return err
	}
	return s.MemoryStore.CommitSegment(ctx, id, owner, epoch, n, offsetMs)
}

func (s *leaseTestStore) Takeover(ctx context.Context, id, owner, ownerURL string, lease time.Duration) (abi.JobRecord, error) {
	if err := s.isDown(); err != nil {
		return abi.JobRecord{}, err
	}
	return s.MemoryStore.Takeover(ctx, id, owner, ownerURL, lease)
}

func (s *leaseTestStore) Release(ctx context.Context, id, owner string, epoch int64) error {
	if err := s.isDown(); err != nil {
		return err
	}
	return s.MemoryStore.Release(ctx, id, owner, epoch)
}

func (s *leaseTestStore) Delete(ctx context.Context, id, owner string, epoch int64) error {
	if err := s.isDown(); err != nil {
		return err
	}
	return s.MemoryStore.Delete(ctx, id, owner, epoch)
}

func (s *leaseTestStore) List(ctx context.Context, f abi.ListRequest) ([]abi.JobRecord, int64, error) {
	s.mu.Lock()
	s.lists++
	n, hook := s.lists, s.listHook
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	if err := s.isDown(); err != nil {
		return nil, 0, err
	}
	return s.MemoryStore.List(ctx, f)
}

func (s *leaseTestStore) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if err := s.isDown(); err != nil {
		return false, err
	}
	return s.MemoryStore.TryLock(ctx, name, owner, ttl)
}

// renewTestClock is a clock that moves only when the test says so.
type renewTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func newRenewTestClock() *renewTestClock {
	return &renewTestClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *renewTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *renewTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// counterValue reads a counter (prometheus/testutil needs a module go.sum
// does not carry).
func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatalf("read metric: %v", err)
		}
		sum += pb.GetCounter().GetValue()
	}
	return sum
}
