package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmhls/wasmhls/abi"
)

const (
	testLease = 3 * time.Second
	testEvery = time.Second
)

type renewFixture struct {
	clock  *renewTestClock
	store  *leaseTestStore
	reg    *prometheus.Registry
	worker *RenewWorker
}

func newRenewFixture(t *testing.T) *renewFixture {
	t.Helper()
	c := newRenewTestClock()
	f := &renewFixture{clock: c, store: newLeaseTestStore(c), reg: prometheus.NewRegistry()}
	f.worker = NewRenewWorker(f.store, RenewConfig{
		Pod: "pod-a", Lease: testLease, Every: testEvery, Now: c.Now, Registerer: f.reg,
	}, nil)
	return f
}

// create makes job id in the store owned by pod-a and adds it to the worker.
func (f *renewFixture) create(t *testing.T, id string) *Lease {
	t.Helper()
	sent := f.clock.Now()
	rec, created, err := f.store.Create(context.Background(), abi.JobRecord{
		ID: id, Item: "item1", Variant: "360p", Owner: "pod-a", OwnerURL: "http://a",
		LastCompletedSegment: -1, LastRequestedSegment: -1,
	}, testLease)
	if err != nil || !created {
		t.Fatalf("create %s: created=%v err=%v", id, created, err)
	}
	return f.worker.AddSent(id, rec.Epoch, abi.Progress{LastCompletedSegment: -1, LastRequestedSegment: -1}, sent)
}

func (f *renewFixture) renewals(t *testing.T, result string) float64 {
	return counterValue(t, f.worker.metrics.renewals.WithLabelValues(result))
}

func TestRenewExtendsLeaseAndCarriesProgress(t *testing.T) {
	f := newRenewFixture(t)
	ctx := context.Background()
	l := f.create(t, "s1-360p")

	// Renew every second for longer than the lease: the lease never lapses.
	for i := 0; i < 10; i++ {
		l.SetProgress(abi.Progress{LastCompletedSegment: i, LastRequestedSegment: i + 2, LastDurableOffsetMs: int64(i) * 2000})
		f.clock.Advance(testEvery)
		f.worker.RenewOnce(ctx)
		if err := l.CheckWrite(); err != nil {
			t.Fatalf("round %d: CheckWrite: %v", i, err)
		}
	}
	rec, err := f.store.Get(ctx, "s1-360p")
	if err != nil {
		t.Fatal(err)
	}
	if rec.LastCompletedSegment != 9 || rec.LastRequestedSegment != 11 || rec.LastDurableOffsetMs != 18000 {
		t.Errorf("store progress = %d/%d/%d, want 9/11/18000", rec.LastCompletedSegment, rec.LastRequestedSegment, rec.LastDurableOffsetMs)
	}
	if want := f.clock.Now().Add(testLease).UnixMilli(); rec.LeaseExpiresMs != want || l.ExpiresMs() != want {
		t.Errorf("lease expires %d (lease says %d), want %d", rec.LeaseExpiresMs, l.ExpiresMs(), want)
	}
	if got := f.renewals(t, "ok"); got != 10 {
		t.Errorf("renewals{ok} = %v, want 10", got)
	}
	if f.worker.Degraded() != nil {
		t.Errorf("Degraded = %v after good renews", f.worker.Degraded())
	}
	select {
	case <-l.Fenced():
		t.Fatal("lease fenced while renews succeed")
	default:
	}
}

func TestRenewLostAfterTakeoverFencesJob(t *testing.T) {
	f := newRenewFixture(t)
	ctx := context.Background()
	l := f.create(t, "s1-360p")
	other := f.create(t, "s2-360p")

	// pod-a stops renewing (e.g. paused); the lease expires; pod-b takes over.
	f.clock.Advance(testLease + time.Millisecond)
	rec, err := f.store.Takeover(ctx, "s1-360p", "pod-b", "http://b", testLease)
	if err != nil || rec.Epoch != 2 {
		t.Fatalf("takeover: epoch %d err %v", rec.Epoch, err)
	}
	f.worker.RenewOnce(ctx)

	select {
	case <-l.Fenced():
	default:
		t.Fatal("lease not fenced after the store answered lost")
	}
	if err := l.CheckWrite(); !errors.Is(err, ErrLost) {
		t.Fatalf("CheckWrite = %v, want ErrLost", err)
	}
	if len(f.worker.Leases()) != 1 || f.worker.Leases()[0] != other {
		t.Errorf("worker still holds the lost lease: %v", f.worker.Leases())
	}
	// The untouched job was renewed (its lease was expired but nobody took
	// it: the store still has pod-a at epoch 1).
	if err := other.CheckWrite(); err != nil {
		t.Errorf("other job CheckWrite: %v", err)
	}
	if got := f.renewals(t, "lost"); got != 1 {
		t.Errorf("renewals{lost} = %v, want 1", got)
	}
	if got := counterValue(t, f.worker.metrics.fenced); got != 1 {
		t.Errorf("fenced_total = %v, want 1", got)
	}
	// A lost lease is not a store failure.
	if err := f.worker.Degraded(); err != nil {
		t.Errorf("Degraded = %v, want nil", err)
	}
	// The lost job is not renewed again.
	before := f.store.renewCount()
	f.clock.Advance(testEvery)
	f.worker.RenewOnce(ctx)
	if f.store.renewCount() != before+1 {
		t.Errorf("renews: %d → %d, want only the remaining job renewed", before, f.store.renewCount())
	}
}

func TestRenewRecordGoneIsLost(t *testing.T) {
	f := newRenewFixture(t)
	l := f.create(t, "s1-360p")
	if err := f.store.Delete(context.Background(), "s1-360p", "pod-a", 1); err != nil {
		t.Fatal(err)
	}
	f.worker.RenewOnce(context.Background())
	err := l.CheckWrite()
	if !errors.Is(err, ErrLost) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("CheckWrite = %v, want ErrLost wrapping ErrNotFound", err)
	}
}

func TestSelfFenceWhileStoreUnreachable(t *testing.T) {
	f := newRenewFixture(t)
	ctx := context.Background()
	l := f.create(t, "s1-360p")
	deadline := testLease - testEvery // the default

	f.store.setDown(errStoreDown)
	// Renews fail; writes go on until the deadline since the last good send.
	f.clock.Advance(testEvery)
	f.worker.RenewOnce(ctx)
	if err := f.worker.Degraded(); !errors.Is(err, errStoreDown) {
		t.Fatalf("Degraded = %v, want the store error", err)
	}
	if err := l.CheckWrite(); err != nil {
		t.Fatalf("CheckWrite 1s after the last renew: %v", err)
	}
	f.clock.Advance(deadline - testEvery) // exactly at the deadline: still allowed
	if err := l.CheckWrite(); err != nil {
		t.Fatalf("CheckWrite at the deadline: %v", err)
	}
	f.clock.Advance(time.Millisecond)
	if err := l.CheckWrite(); !errors.Is(err, ErrFenced) {
		t.Fatalf("CheckWrite past the deadline = %v, want ErrFenced", err)
	}
	f.worker.RenewOnce(ctx) // still down; must not count the fence twice
	_ = l.CheckWrite()
	if got := counterValue(t, f.worker.metrics.fenced); got != 1 {
		t.Errorf("fenced_total = %v, want 1", got)
	}
	if got := f.renewals(t, "error"); got != 2 {
		t.Errorf("renewals{error} = %v, want 2", got)
	}
	// Self-fencing is not loss: Fenced stays open so the job can resume.
	select {
	case <-l.Fenced():
		t.Fatal("Fenced closed by a self-fence")
	default:
	}

	// The store comes back; nobody took the job over: renew succeeds and
	// writes resume.
	f.store.setDown(nil)
	f.worker.RenewOnce(ctx)
	if err := l.CheckWrite(); err != nil {
		t.Fatalf("CheckWrite after the store returned: %v", err)
	}
	if err := f.worker.Degraded(); err != nil {
		t.Errorf("Degraded = %v after a good round", err)
	}
}

// The deadline runs from when the last good renew was sent: a renew whose
// reply is slow buys no extra time.
func TestSelfFenceMeasuredFromSendTime(t *testing.T) {
	f := newRenewFixture(t)
	ctx := context.Background()
	l := f.create(t, "s1-360p")
	deadline := testLease - testEvery

	f.clock.Advance(testEvery)
	sent := f.clock.Now()
	f.store.onRenew = func() { f.clock.Advance(1500 * time.Millisecond) } // a slow round trip
	f.worker.RenewOnce(ctx)
	f.store.onRenew = nil
	if f.renewals(t, "ok") != 1 {
		t.Fatal("renew did not succeed")
	}
	// Measured from the reply this would still be 1.5 s inside the deadline.
	f.clock.Advance(sent.Add(deadline).Sub(f.clock.Now()) + time.Millisecond)
	if err := l.CheckWrite(); !errors.Is(err, ErrFenced) {
		t.Fatalf("CheckWrite at send+deadline+1ms = %v, want ErrFenced", err)
	}
}

// A lease fenced outside the worker (a commit answered lost) is dropped at
// the next round and never renewed again.
func TestFencedLeaseIsDropped(t *testing.T) {
	f := newRenewFixture(t)
	l := f.create(t, "s1-360p")
	l.fence(ErrLost)
	f.worker.RenewOnce(context.Background())
	if n := f.store.renewCount(); n != 0 || len(f.worker.Leases()) != 0 {
		t.Fatalf("fenced lease: %d renews, %d leases held", n, len(f.worker.Leases()))
	}
}

func TestRemoveFencesAndStopsRenewing(t *testing.T) {
	f := newRenewFixture(t)
	l := f.create(t, "s1-360p")
	f.worker.Remove("s1-360p")
	select {
	case <-l.Fenced():
	default:
		t.Fatal("Remove did not close Fenced")
	}
	if err := l.CheckWrite(); err == nil || errors.Is(err, ErrLost) {
		t.Fatalf("CheckWrite after Remove = %v, want a removed error (not ErrLost)", err)
	}
	f.worker.RenewOnce(context.Background())
	if f.store.renewCount() != 0 {
		t.Errorf("renewed a removed lease %d times", f.store.renewCount())
	}
	// Re-adding under the same id replaces and fences the older lease.
	l2 := f.create2(t, "s1-360p")
	l3 := f.worker.Add("s1-360p", 2, abi.Progress{})
	select {
	case <-l2.Fenced():
	default:
		t.Fatal("replaced lease not fenced")
	}
	if l3.CheckWrite() != nil {
		t.Fatal("new lease not writable")
	}
}

// create2 adds a lease for a job that already exists in the store.
func (f *renewFixture) create2(t *testing.T, id string) *Lease {
	t.Helper()
	return f.worker.Add(id, 1, abi.Progress{})
}

func TestRunRenewsUntilCancelled(t *testing.T) {
	c := newRenewTestClock()
	store := newLeaseTestStore(c)
	renewed := make(chan struct{}, 16)
	store.onRenew = func() {
		select {
		case renewed <- struct{}{}:
		default:
		}
	}
	// A real ticker with a short period; the test waits on the store's
	// signal, not on time.
	w := NewRenewWorker(store, RenewConfig{Pod: "pod-a", Lease: 30 * time.Millisecond, Every: 10 * time.Millisecond, Now: c.Now}, nil)
	if _, _, err := store.Create(context.Background(), abi.JobRecord{ID: "j", Owner: "pod-a"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	w.Add("j", 1, abi.Progress{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	limit := time.After(30 * time.Second)
	for i := 0; i < 2; i++ {
		select {
		case <-renewed:
		case <-limit:
			cancel()
			t.Fatal("Run did not renew within 30s")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNewRenewWorkerRefusesImpossibleTiming(t *testing.T) {
	for _, cfg := range []RenewConfig{
		{Lease: time.Second, Every: time.Second},
		{Lease: 0, Every: time.Second},
		{Lease: 3 * time.Second, Every: time.Second, Deadline: 3 * time.Second},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewRenewWorker(%+v) did not refuse", cfg)
				}
			}()
			NewRenewWorker(nil, cfg, nil)
		}()
	}
}
