package session

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/wasmhls/wasmhls/abi"
)

// MemoryStore is an in-process Store with the real lease semantics of
// DESIGN.md's lease protocol: leases expire on an injected clock, takeover
// increments the epoch, renew/commit/release/delete are fenced by owner and
// epoch. Single-host tests use it, and it is the reference behaviour for the
// store conformance suite.
type MemoryStore struct {
	now func() time.Time
	// recordTTL: a record whose lease ended this long ago is gone, as a
	// Redis key with a TTL would be (rule 6: dead jobs expire on their own).
	recordTTL time.Duration

	mu    sync.Mutex
	recs  map[string]abi.JobRecord
	locks map[string]memLock
}

type memLock struct {
	owner     string
	expiresMs int64
}

// DefaultRecordTTL is how long a record outlives its lease in a MemoryStore.
const DefaultRecordTTL = time.Hour

// NewMemoryStore returns an empty store on the clock now (time.Now when nil).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, recordTTL: DefaultRecordTTL, recs: map[string]abi.JobRecord{}, locks: map[string]memLock{}}
}

func (s *MemoryStore) nowMs() int64 { return s.now().UnixMilli() }

// live returns the record id if present and not expired past its TTL; the
// caller holds s.mu.
func (s *MemoryStore) live(id string, now int64) (abi.JobRecord, bool) {
	r, ok := s.recs[id]
	if !ok {
		return abi.JobRecord{}, false
	}
	if now > r.LeaseExpiresMs+s.recordTTL.Milliseconds() {
		delete(s.recs, id)
		return abi.JobRecord{}, false
	}
	return r, true
}

// fenced returns the record if owner and epoch match an active record.
func (s *MemoryStore) fenced(id, owner string, epoch int64, now int64) (abi.JobRecord, error) {
	r, ok := s.live(id, now)
	if !ok {
		return r, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if r.Owner != owner || r.Epoch != epoch || r.State != abi.StateActive {
		return r, fmt.Errorf("job %s: owner %s epoch %d (state %s), caller %s epoch %d: %w",
			id, r.Owner, r.Epoch, r.State, owner, epoch, ErrLost)
	}
	return r, nil
}

func validLease(lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("lease must be positive, got %s", lease)
	}
	return nil
}

// Create stores rec with this store's clock for the lease; epoch starts at
// rec.Epoch, or 1 when zero. An existing record is returned unchanged.
func (s *MemoryStore) Create(_ context.Context, rec abi.JobRecord, lease time.Duration) (abi.JobRecord, bool, error) {
	if rec.ID == "" || rec.Owner == "" {
		return abi.JobRecord{}, false, fmt.Errorf("create: record needs an id and an owner")
	}
	if err := validLease(lease); err != nil {
		return abi.JobRecord{}, false, fmt.Errorf("create %s: %w", rec.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	if r, ok := s.live(rec.ID, now); ok {
		r.NowMs = now
		return r, false, nil
	}
	if rec.Epoch <= 0 {
		rec.Epoch = 1
	}
	rec.State = abi.StateActive
	rec.LeaseExpiresMs = now + lease.Milliseconds()
	rec.UpdatedMs = now
	rec.NowMs = 0
	s.recs[rec.ID] = rec
	rec.NowMs = now
	return rec, true, nil
}

func (s *MemoryStore) Get(_ context.Context, id string) (abi.JobRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	r, ok := s.live(id, now)
	if !ok {
		return abi.JobRecord{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	r.NowMs = now
	return r, nil
}

// Renew extends the lease of an active record whose owner and epoch match,
// even if it has expired meanwhile: the epoch, not the clock, fences.
func (s *MemoryStore) Renew(_ context.Context, id, owner string, epoch int64, lease time.Duration, p abi.Progress) (int64, error) {
	if err := validLease(lease); err != nil {
		return 0, fmt.Errorf("renew %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	r, err := s.fenced(id, owner, epoch, now)
	if err != nil {
		return 0, err
	}
	r.LeaseExpiresMs = now + lease.Milliseconds()
	r.LastCompletedSegment = p.LastCompletedSegment
	r.LastRequestedSegment = p.LastRequestedSegment
	r.LastDurableOffsetMs = p.LastDurableOffsetMs
	r.UpdatedMs = now
	s.recs[id] = r
	return r.LeaseExpiresMs, nil
}

func (s *MemoryStore) CommitSegment(_ context.Context, id, owner string, epoch int64, n int, offsetMs int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	r, err := s.fenced(id, owner, epoch, now)
	if err != nil {
		return err
	}
	r.LastCompletedSegment = n
	r.LastDurableOffsetMs = offsetMs
	r.UpdatedMs = now
	s.recs[id] = r
	return nil
}

// Takeover succeeds only when the lease has expired or the record was
// released; the epoch rises by one.
func (s *MemoryStore) Takeover(_ context.Context, id, owner, ownerURL string, lease time.Duration) (abi.JobRecord, error) {
	if err := validLease(lease); err != nil {
		return abi.JobRecord{}, fmt.Errorf("takeover %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	r, ok := s.live(id, now)
	if !ok {
		return abi.JobRecord{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if r.State == abi.StateActive && r.LeaseExpiresMs > now {
		r.NowMs = now
		return r, fmt.Errorf("job %s owned by %s until %d (now %d): %w", id, r.Owner, r.LeaseExpiresMs, now, ErrLeaseValid)
	}
	r.Owner, r.OwnerURL = owner, ownerURL
	r.Epoch++
	r.State = abi.StateActive
	r.LeaseExpiresMs = now + lease.Milliseconds()
	r.UpdatedMs = now
	s.recs[id] = r
	r.NowMs = now
	return r, nil
}

// Release ends the lease now so that any pod may take the job over at once.
func (s *MemoryStore) Release(_ context.Context, id, owner string, epoch int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	r, err := s.fenced(id, owner, epoch, now)
	if err != nil {
		return err
	}
	r.State = abi.StateReleased
	r.LeaseExpiresMs = now
	r.UpdatedMs = now
	s.recs[id] = r
	return nil
}

// Delete removes a record whose owner and epoch match (released or not).
func (s *MemoryStore) Delete(_ context.Context, id, owner string, epoch int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	r, ok := s.live(id, now)
	if !ok {
		return fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if r.Owner != owner || r.Epoch != epoch {
		return fmt.Errorf("delete job %s: owner %s epoch %d, caller %s epoch %d: %w", id, r.Owner, r.Epoch, owner, epoch, ErrLost)
	}
	delete(s.recs, id)
	return nil
}

// List returns the live records matching f, sorted by id.
func (s *MemoryStore) List(_ context.Context, f abi.ListRequest) ([]abi.JobRecord, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	ids := make([]string, 0, len(s.recs))
	for id := range s.recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []abi.JobRecord
	for _, id := range ids {
		r, ok := s.live(id, now)
		if !ok || (f.Item != "" && r.Item != f.Item) || (f.Owner != "" && r.Owner != f.Owner) {
			continue
		}
		out = append(out, r)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, now, nil
}

// TryLock takes the named lock for ttl if it is free, expired, or already
// held by owner (which extends it).
func (s *MemoryStore) TryLock(_ context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if name == "" || owner == "" {
		return false, fmt.Errorf("try_lock: name and owner must not be empty")
	}
	if err := validLease(ttl); err != nil {
		return false, fmt.Errorf("try_lock %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	l, held := s.locks[name]
	if held && l.expiresMs > now && l.owner != owner {
		return false, nil
	}
	s.locks[name] = memLock{owner: owner, expiresMs: now + ttl.Milliseconds()}
	return true, nil
}
