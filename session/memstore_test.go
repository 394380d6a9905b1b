package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
)

// testClock is the injected store clock: tests move it instead of waiting.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestStore() (*MemoryStore, *testClock) {
	c := &testClock{t: time.Unix(1_700_000_000, 0)}
	return NewMemoryStore(c.now), c
}

func TestMemoryStoreCreateGet(t *testing.T) {
	ctx := context.Background()
	s, clk := newTestStore()
	rec, created, err := s.Create(ctx, abi.JobRecord{ID: "j", Item: "i", Owner: "a", OwnerURL: "http://a"}, 10*time.Second)
	if err != nil || !created || rec.Epoch != 1 || rec.State != abi.StateActive || rec.LeaseExpiresMs != clk.now().UnixMilli()+10_000 {
		t.Fatalf("Create = %+v, %v, %v", rec, created, err)
	}
	again, created, err := s.Create(ctx, abi.JobRecord{ID: "j", Owner: "b"}, time.Second)
	if err != nil || created || again.Owner != "a" {
		t.Fatalf("second Create = %+v, created %v, %v; want the existing record of a", again, created, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v, want ErrNotFound", err)
	}
	got, err := s.Get(ctx, "j")
	if err != nil || got.Owner != "a" || got.NowMs != clk.now().UnixMilli() {
		t.Errorf("Get = %+v, %v", got, err)
	}
	if _, _, err := s.Create(ctx, abi.JobRecord{ID: "x", Owner: "a"}, 0); err == nil {
		t.Error("Create with a zero lease succeeded")
	}
}

func TestMemoryStoreFencing(t *testing.T) {
	ctx := context.Background()
	s, clk := newTestStore()
	s.Create(ctx, abi.JobRecord{ID: "j", Owner: "a"}, 10*time.Second)
	// A valid lease cannot be taken over.
	if r, err := s.Takeover(ctx, "j", "b", "http://b", 10*time.Second); !errors.Is(err, ErrLeaseValid) || r.Owner != "a" {
		t.Fatalf("Takeover of a valid lease = %+v, %v", r, err)
	}
	if _, err := s.Renew(ctx, "j", "a", 1, 10*time.Second, abi.Progress{LastCompletedSegment: 2}); err != nil {
		t.Fatal(err)
	}
	clk.advance(11 * time.Second)
	r, err := s.Takeover(ctx, "j", "b", "http://b", 10*time.Second)
	if err != nil || r.Owner != "b" || r.Epoch != 2 || r.LastCompletedSegment != 2 {
		t.Fatalf("Takeover of an expired lease = %+v, %v", r, err)
	}
	// The old owner is fenced everywhere.
	if _, err := s.Renew(ctx, "j", "a", 1, time.Second, abi.Progress{}); !errors.Is(err, ErrLost) {
		t.Errorf("stale Renew = %v, want ErrLost", err)
	}
	if err := s.CommitSegment(ctx, "j", "a", 1, 3, 8000); !errors.Is(err, ErrLost) {
		t.Errorf("stale CommitSegment = %v, want ErrLost", err)
	}
	if err := s.Release(ctx, "j", "a", 1); !errors.Is(err, ErrLost) {
		t.Errorf("stale Release = %v, want ErrLost", err)
	}
	if err := s.Delete(ctx, "j", "a", 1); !errors.Is(err, ErrLost) {
		t.Errorf("stale Delete = %v, want ErrLost", err)
	}
	if err := s.CommitSegment(ctx, "j", "b", 2, 3, 8000); err != nil {
		t.Fatal(err)
	}
	// Release lets another pod take over at once, without waiting for expiry.
	if err := s.Release(ctx, "j", "b", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitSegment(ctx, "j", "b", 2, 4, 10000); !errors.Is(err, ErrLost) {
		t.Errorf("Commit after Release = %v, want ErrLost", err)
	}
	r, err = s.Takeover(ctx, "j", "c", "http://c", 10*time.Second)
	if err != nil || r.Epoch != 3 || r.LastCompletedSegment != 3 || r.State != abi.StateActive {
		t.Fatalf("Takeover after Release = %+v, %v", r, err)
	}
	if err := s.Delete(ctx, "j", "c", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Takeover(ctx, "j", "d", "", time.Second); !errors.Is(err, ErrNotFound) {
		t.Errorf("Takeover of a deleted job = %v, want ErrNotFound", err)
	}
}

func TestMemoryStoreConcurrentTakeoverOneWinner(t *testing.T) {
	ctx := context.Background()
	s, clk := newTestStore()
	s.Create(ctx, abi.JobRecord{ID: "j", Owner: "dead"}, time.Second)
	clk.advance(2 * time.Second)
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := s.Takeover(ctx, "j", string(rune('a'+i)), "", 10*time.Second); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, ErrLeaseValid) {
				t.Errorf("Takeover: %v", err)
			}
		}(i)
	}
	wg.Wait()
	r, _ := s.Get(ctx, "j")
	if wins.Load() != 1 || r.Epoch != 2 {
		t.Fatalf("%d winners, epoch %d; want 1 winner and epoch 2", wins.Load(), r.Epoch)
	}
}

func TestMemoryStoreRecordsExpireAndList(t *testing.T) {
	ctx := context.Background()
	s, clk := newTestStore()
	s.Create(ctx, abi.JobRecord{ID: "a1", Item: "x", Owner: "a"}, time.Second)
	s.Create(ctx, abi.JobRecord{ID: "b1", Item: "y", Owner: "b"}, time.Hour)
	s.Create(ctx, abi.JobRecord{ID: "a2", Item: "y", Owner: "a"}, time.Hour)
	recs, now, _ := s.List(ctx, abi.ListRequest{Owner: "a"})
	if len(recs) != 2 || recs[0].ID != "a1" || recs[1].ID != "a2" || now != clk.now().UnixMilli() {
		t.Fatalf("List(owner a) = %+v", recs)
	}
	recs, _, _ = s.List(ctx, abi.ListRequest{Item: "y", Limit: 1})
	if len(recs) != 1 || recs[0].ID != "a2" {
		t.Fatalf("List(item y, limit 1) = %+v", recs)
	}
	clk.advance(DefaultRecordTTL + 2*time.Second)
	if _, err := s.Get(ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a record long past its lease is still there: %v", err)
	}
	if _, err := s.Get(ctx, "b1"); err != nil {
		t.Errorf("a record within its lease vanished: %v", err)
	}
}

func TestMemoryStoreTryLock(t *testing.T) {
	ctx := context.Background()
	s, clk := newTestStore()
	ok, _ := s.TryLock(ctx, "sweep", "a", 5*time.Second)
	if !ok {
		t.Fatal("first TryLock failed")
	}
	if ok, _ := s.TryLock(ctx, "sweep", "b", 5*time.Second); ok {
		t.Fatal("TryLock by b while a holds it succeeded")
	}
	if ok, _ := s.TryLock(ctx, "sweep", "a", 5*time.Second); !ok {
		t.Fatal("the holder could not extend its lock")
	}
	clk.advance(6 * time.Second)
	if ok, _ := s.TryLock(ctx, "sweep", "b", 5*time.Second); !ok {
		t.Fatal("TryLock after expiry failed")
	}
}
