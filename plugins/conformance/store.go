package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/session"
)

func storeCases() []Case {
	return []Case{
		{Name: "create", Doc: "create stores a new record: created=true, epoch >= 1, fields kept, lease in the future", Stateless: true, Full: true, store: caseCreate},
		{Name: "create_existing", Doc: "a second create returns the existing record with created=false", Full: true, store: caseCreateExisting},
		{Name: "get", Doc: "get returns what create stored, with the store's now_ms", Full: true, store: caseGet},
		{Name: "get_missing", Doc: "get of an unknown id is not_found", Stateless: true, Full: true, store: caseGetMissing},
		{Name: "renew", Doc: "renew by owner and epoch extends the lease and records progress", Stateless: true, Full: true, store: caseRenew},
		{Name: "renew_fenced", Doc: "renew with another owner, a wrong epoch or an unknown id is lost", Full: true, store: caseRenewFenced},
		{Name: "commit_segment", Doc: "commit_segment by owner and epoch records progress; a wrong epoch is lost", Stateless: true, Full: true, store: caseCommit},
		{Name: "takeover_valid_lease", Doc: "takeover of a valid lease is refused with the current record, nothing changes", Full: true, store: caseTakeoverValid},
		{Name: "takeover_missing", Doc: "takeover of an unknown id is not_found", Full: true, store: caseTakeoverMissing},
		{Name: "takeover_stateless", Doc: "a stateless store hands the job to whoever asks", Stateless: true, store: caseTakeoverStateless},
		{Name: "release", Doc: "release by the owner lets another pod take over at once, epoch +1; the old owner is fenced", Full: true, store: caseRelease},
		{Name: "release_delete_ok", Doc: "release and delete by owner and epoch succeed", Stateless: true, Full: true, store: caseReleaseDeleteOK},
		{Name: "delete", Doc: "delete by owner removes the record; another owner is lost", Full: true, store: caseDelete},
		{Name: "list", Doc: "list filters by item and owner, honours limit and reports now_ms", Full: true, store: caseList},
		{Name: "list_stateless", Doc: "list answers (no records for a store that keeps none) with now_ms", Stateless: true, store: caseListStateless},
		{Name: "expiry", Doc: "a lease expires by the store's clock and can then be taken over, epoch +1", Full: true, store: caseExpiry},
		{Name: "epochs", Doc: "every takeover raises the epoch by exactly one", Full: true, store: caseEpochs},
		{Name: "stale_epoch", Doc: "after a takeover every write with the old epoch is lost", Full: true, store: caseStaleEpoch},
		{Name: "concurrent_takeover", Doc: "racers take over one expired job: exactly one wins, epoch +1", Full: true, store: caseConcurrentTakeover},
		{Name: "try_lock", Doc: "try_lock: the first owner acquires, another is refused until the TTL passes", Full: true, store: caseTryLock},
		{Name: "try_lock_stateless", Doc: "try_lock acquires", Stateless: true, store: caseTryLockStateless},
	}
}

func record(id, owner string) abi.JobRecord {
	return abi.JobRecord{
		ID: id, Item: "item-" + id, Variant: "360p", ParamsHash: "ph-" + id,
		Owner: owner, OwnerURL: "http://" + owner + ":8080",
		State: abi.StateActive, ManifestPath: "m/" + id, SegmentPrefix: "s/" + id + "/",
		LastCompletedSegment: -1, LastRequestedSegment: 0,
	}
}

// create makes a record with owner "pod-a" and the given lease.
func create(ctx context.Context, s session.Store, id string, lease time.Duration) (abi.JobRecord, error) {
	rec, created, err := s.Create(ctx, record(id, "pod-a"), lease)
	if err != nil {
		return rec, errorf("create %s: %w", id, err)
	}
	if !created {
		return rec, errorf("create %s: created=false for a new id", id)
	}
	return rec, nil
}

func caseCreate(ctx context.Context, s session.Store, o Options, id string) error {
	in := record(id, "pod-a")
	rec, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	if err := sameFields(in, rec); err != nil {
		return errorf("create: %w", err)
	}
	if rec.Epoch < 1 {
		return errorf("create: epoch %d, want >= 1", rec.Epoch)
	}
	if rec.LeaseExpiresMs <= 0 || (rec.NowMs > 0 && rec.LeaseExpiresMs <= rec.NowMs) {
		return errorf("create: lease_expires_ms %d not after now_ms %d", rec.LeaseExpiresMs, rec.NowMs)
	}
	return nil
}

func sameFields(want, got abi.JobRecord) error {
	type f struct{ name, want, got string }
	for _, x := range []f{
		{"id", want.ID, got.ID}, {"item", want.Item, got.Item}, {"variant", want.Variant, got.Variant},
		{"params_hash", want.ParamsHash, got.ParamsHash}, {"owner", want.Owner, got.Owner},
		{"owner_url", want.OwnerURL, got.OwnerURL}, {"manifest_path", want.ManifestPath, got.ManifestPath},
		{"segment_prefix", want.SegmentPrefix, got.SegmentPrefix}, {"state", abi.StateActive, got.State},
	} {
		if x.want != x.got {
			return fmt.Errorf("%s is %q, want %q", x.name, x.got, x.want)
		}
	}
	return nil
}

func caseCreateExisting(ctx context.Context, s session.Store, o Options, id string) error {
	first, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	rec, created, err := s.Create(ctx, record(id, "pod-b"), o.Lease)
	if err != nil {
		return errorf("second create: %w", err)
	}
	if created {
		return errorf("second create: created=true, want false (the record exists)")
	}
	if rec.Owner != "pod-a" || rec.Epoch != first.Epoch {
		return errorf("second create returned owner %q epoch %d, want the existing pod-a epoch %d", rec.Owner, rec.Epoch, first.Epoch)
	}
	return nil
}

func caseGet(ctx context.Context, s session.Store, o Options, id string) error {
	first, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	rec, err := s.Get(ctx, id)
	if err != nil {
		return errorf("get: %w", err)
	}
	if err := sameFields(record(id, "pod-a"), rec); err != nil {
		return errorf("get: %w", err)
	}
	if rec.Epoch != first.Epoch || rec.LeaseExpiresMs != first.LeaseExpiresMs {
		return errorf("get: epoch %d lease %d, want create's %d and %d", rec.Epoch, rec.LeaseExpiresMs, first.Epoch, first.LeaseExpiresMs)
	}
	if rec.NowMs <= 0 {
		return errorf("get: now_ms %d, want the store's clock", rec.NowMs)
	}
	return nil
}

func caseGetMissing(ctx context.Context, s session.Store, _ Options, id string) error {
	_, err := s.Get(ctx, id+"-never-created")
	return wantErr("get of an unknown id", err, session.ErrNotFound)
}

func caseRenew(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	p := abi.Progress{LastCompletedSegment: 3, LastRequestedSegment: 5, LastDurableOffsetMs: 24000}
	exp, err := s.Renew(ctx, id, rec.Owner, rec.Epoch, 2*o.Lease, p)
	if err != nil {
		return errorf("renew by owner: %w", err)
	}
	if exp <= rec.LeaseExpiresMs {
		return errorf("renew with twice the lease: expiry %d not after the first %d", exp, rec.LeaseExpiresMs)
	}
	if o.Stateless {
		return nil
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		return errorf("get after renew: %w", err)
	}
	if got.LastCompletedSegment != 3 || got.LastRequestedSegment != 5 || got.LastDurableOffsetMs != 24000 {
		return errorf("progress after renew = %d/%d/%d, want 3/5/24000", got.LastCompletedSegment, got.LastRequestedSegment, got.LastDurableOffsetMs)
	}
	if got.LeaseExpiresMs != exp {
		return errorf("lease after renew = %d, renew said %d", got.LeaseExpiresMs, exp)
	}
	return nil
}

func caseRenewFenced(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	_, err = s.Renew(ctx, id, "pod-b", rec.Epoch, o.Lease, abi.Progress{})
	if err := wantErr("renew by another owner", err, session.ErrLost); err != nil {
		return err
	}
	_, err = s.Renew(ctx, id, rec.Owner, rec.Epoch+1, o.Lease, abi.Progress{})
	if err := wantErr("renew with a wrong epoch", err, session.ErrLost); err != nil {
		return err
	}
	_, err = s.Renew(ctx, id+"-never-created", rec.Owner, rec.Epoch, o.Lease, abi.Progress{})
	if !errors.Is(err, session.ErrLost) && !errors.Is(err, session.ErrNotFound) {
		return errorf("renew of an unknown id: got %v, want lost or not found", err)
	}
	return nil
}

func caseCommit(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	if err := s.CommitSegment(ctx, id, rec.Owner, rec.Epoch, 0, 6000); err != nil {
		return errorf("commit segment 0: %w", err)
	}
	if err := s.CommitSegment(ctx, id, rec.Owner, rec.Epoch, 1, 12000); err != nil {
		return errorf("commit segment 1: %w", err)
	}
	if o.Stateless {
		return nil
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		return errorf("get after commit: %w", err)
	}
	if got.LastCompletedSegment != 1 || got.LastDurableOffsetMs != 12000 {
		return errorf("after commits 0 and 1: last_completed_segment %d offset %d, want 1 and 12000", got.LastCompletedSegment, got.LastDurableOffsetMs)
	}
	err = s.CommitSegment(ctx, id, rec.Owner, rec.Epoch+1, 2, 18000)
	return wantErr("commit with a wrong epoch", err, session.ErrLost)
}

func caseTakeoverValid(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	cur, err := s.Takeover(ctx, id, "pod-b", "http://pod-b:8080", o.Lease)
	if err := wantErr("takeover of a valid lease", err, session.ErrLeaseValid); err != nil {
		return err
	}
	if cur.Owner != "pod-a" || cur.Epoch != rec.Epoch {
		return errorf("refused takeover returned owner %q epoch %d, want the current pod-a epoch %d", cur.Owner, cur.Epoch, rec.Epoch)
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		return errorf("get after refused takeover: %w", err)
	}
	if got.Owner != "pod-a" || got.Epoch != rec.Epoch {
		return errorf("refused takeover changed the record: owner %q epoch %d", got.Owner, got.Epoch)
	}
	return nil
}

func caseTakeoverMissing(ctx context.Context, s session.Store, o Options, id string) error {
	_, err := s.Takeover(ctx, id+"-never-created", "pod-b", "http://pod-b:8080", o.Lease)
	return wantErr("takeover of an unknown id", err, session.ErrNotFound)
}

func caseTakeoverStateless(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := s.Takeover(ctx, id, "pod-b", "http://pod-b:8080", o.Lease)
	if err != nil {
		return errorf("takeover: %w", err)
	}
	if rec.ID != id || rec.Owner != "pod-b" || rec.OwnerURL != "http://pod-b:8080" || rec.Epoch < 1 {
		return errorf("takeover returned id %q owner %q url %q epoch %d, want %q pod-b http://pod-b:8080 >= 1",
			rec.ID, rec.Owner, rec.OwnerURL, rec.Epoch, id)
	}
	return nil
}

func caseRelease(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	err = s.Release(ctx, id, rec.Owner, rec.Epoch+1)
	if err := wantErr("release with a wrong epoch", err, session.ErrLost); err != nil {
		return err
	}
	if err := s.Release(ctx, id, rec.Owner, rec.Epoch); err != nil {
		return errorf("release by owner: %w", err)
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		return errorf("get after release: %w", err)
	}
	if got.State != abi.StateReleased {
		return errorf("state after release = %q, want %q", got.State, abi.StateReleased)
	}
	// A released lease is taken over at once, though it was granted for o.Lease.
	nrec, err := s.Takeover(ctx, id, "pod-b", "http://pod-b:8080", o.Lease)
	if err != nil {
		return errorf("takeover of a released job: %w", err)
	}
	if nrec.Epoch != rec.Epoch+1 || nrec.Owner != "pod-b" || nrec.State != abi.StateActive {
		return errorf("after takeover: owner %q epoch %d state %q, want pod-b %d active", nrec.Owner, nrec.Epoch, nrec.State, rec.Epoch+1)
	}
	_, err = s.Renew(ctx, id, rec.Owner, rec.Epoch, o.Lease, abi.Progress{})
	return wantErr("renew by the pod that released", err, session.ErrLost)
}

func caseReleaseDeleteOK(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	if err := s.Release(ctx, id, rec.Owner, rec.Epoch); err != nil {
		return errorf("release by owner: %w", err)
	}
	if err := s.Delete(ctx, id, rec.Owner, rec.Epoch); err != nil {
		return errorf("delete by owner: %w", err)
	}
	return nil
}

func caseDelete(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := create(ctx, s, id, o.Lease)
	if err != nil {
		return err
	}
	err = s.Delete(ctx, id, "pod-b", rec.Epoch)
	if err := wantErr("delete by another owner", err, session.ErrLost); err != nil {
		return err
	}
	if err := s.Delete(ctx, id, rec.Owner, rec.Epoch); err != nil {
		return errorf("delete by owner: %w", err)
	}
	_, err = s.Get(ctx, id)
	return wantErr("get after delete", err, session.ErrNotFound)
}

func caseList(ctx context.Context, s session.Store, o Options, id string) error {
	item := "item-" + id
	owners := []string{"pod-a", "pod-a", "pod-b"}
	for i, owner := range owners {
		r := record(fmt.Sprintf("%s-%d", id, i), owner)
		r.Item = item
		if _, created, err := s.Create(ctx, r, o.Lease); err != nil || !created {
			return errorf("create %s: created=%v err=%v", r.ID, created, err)
		}
	}
	recs, now, err := s.List(ctx, abi.ListRequest{Item: item})
	if err != nil {
		return errorf("list by item: %w", err)
	}
	if len(recs) != 3 {
		return errorf("list by item %s: %d records, want 3", item, len(recs))
	}
	if now <= 0 {
		return errorf("list: now_ms %d, want the store's clock", now)
	}
	recs, _, err = s.List(ctx, abi.ListRequest{Item: item, Owner: "pod-b"})
	if err != nil {
		return errorf("list by item and owner: %w", err)
	}
	if len(recs) != 1 || recs[0].Owner != "pod-b" || recs[0].ID != id+"-2" {
		return errorf("list by item and owner pod-b: %d records %v, want only %s-2", len(recs), ids(recs), id)
	}
	recs, _, err = s.List(ctx, abi.ListRequest{Item: item, Limit: 2})
	if err != nil {
		return errorf("list with limit: %w", err)
	}
	if len(recs) != 2 {
		return errorf("list with limit 2: %d records", len(recs))
	}
	// A deleted record leaves the list.
	if err := s.Delete(ctx, id+"-0", "pod-a", recs[0].Epoch); err != nil {
		return errorf("delete %s-0: %w", id, err)
	}
	recs, _, err = s.List(ctx, abi.ListRequest{Item: item})
	if err != nil {
		return errorf("list after delete: %w", err)
	}
	if len(recs) != 2 {
		return errorf("list after deleting one of 3: %d records %v", len(recs), ids(recs))
	}
	return nil
}

func ids(recs []abi.JobRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func caseListStateless(ctx context.Context, s session.Store, _ Options, id string) error {
	recs, now, err := s.List(ctx, abi.ListRequest{Item: "item-" + id})
	if err != nil {
		return errorf("list: %w", err)
	}
	if len(recs) != 0 {
		return errorf("list of a stateless store: %d records, want none", len(recs))
	}
	if now <= 0 {
		return errorf("list: now_ms %d, want a clock", now)
	}
	return nil
}

// waitExpired polls get until the store's own clock (now_ms) has passed
// the record's lease, within o.ExpiryDeadline. It returns the last read.
func waitExpired(ctx context.Context, s session.Store, o Options, id string) (abi.JobRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, o.ExpiryDeadline)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := s.Get(ctx, id)
		if err != nil {
			return rec, errorf("get %s while waiting for expiry: %w", id, err)
		}
		if rec.NowMs <= 0 {
			return rec, errorf("get %s: now_ms %d: the store reports no clock, expiry cannot be judged", id, rec.NowMs)
		}
		if rec.NowMs >= rec.LeaseExpiresMs {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return rec, errorf("lease of %s (expires %d) still valid at store time %d after %v", id, rec.LeaseExpiresMs, rec.NowMs, o.ExpiryDeadline)
		case <-tick.C:
		}
	}
}

func caseExpiry(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := create(ctx, s, id, o.ShortLease)
	if err != nil {
		return err
	}
	// Right after create the lease should normally still be valid; if the
	// takeover succeeds anyway, the store must show it happened after expiry.
	if nrec, err := s.Takeover(ctx, id, "pod-b", "http://pod-b:8080", o.Lease); err == nil {
		if nrec.NowMs < rec.LeaseExpiresMs {
			return errorf("takeover succeeded at store time %d before the lease expired at %d", nrec.NowMs, rec.LeaseExpiresMs)
		}
		return nil
	} else if !errors.Is(err, session.ErrLeaseValid) {
		return errorf("takeover right after create: %w", err)
	}
	if _, err := waitExpired(ctx, s, o, id); err != nil {
		return err
	}
	nrec, err := s.Takeover(ctx, id, "pod-b", "http://pod-b:8080", o.Lease)
	if err != nil {
		return errorf("takeover after expiry: %w", err)
	}
	if nrec.Owner != "pod-b" || nrec.Epoch != rec.Epoch+1 {
		return errorf("takeover after expiry: owner %q epoch %d, want pod-b %d", nrec.Owner, nrec.Epoch, rec.Epoch+1)
	}
	return nil
}

// expiredJob creates a record with a short lease and waits until it expired.
func expiredJob(ctx context.Context, s session.Store, o Options, id string) (abi.JobRecord, error) {
	rec, err := create(ctx, s, id, o.ShortLease)
	if err != nil {
		return rec, err
	}
	if _, err := waitExpired(ctx, s, o, id); err != nil {
		return rec, err
	}
	return rec, nil
}

func caseEpochs(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := expiredJob(ctx, s, o, id)
	if err != nil {
		return err
	}
	epoch := rec.Epoch
	for i, owner := range []string{"pod-b", "pod-c"} {
		nrec, err := s.Takeover(ctx, id, owner, "http://"+owner+":8080", o.ShortLease)
		if err != nil {
			return errorf("takeover %d: %w", i+1, err)
		}
		if nrec.Epoch != epoch+1 {
			return errorf("takeover %d: epoch %d, want %d", i+1, nrec.Epoch, epoch+1)
		}
		epoch = nrec.Epoch
		if _, err := waitExpired(ctx, s, o, id); err != nil {
			return err
		}
	}
	return nil
}

func caseStaleEpoch(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := expiredJob(ctx, s, o, id)
	if err != nil {
		return err
	}
	nrec, err := s.Takeover(ctx, id, "pod-b", "http://pod-b:8080", o.Lease)
	if err != nil {
		return errorf("takeover: %w", err)
	}
	// The old owner, old epoch: every write is fenced.
	_, err = s.Renew(ctx, id, rec.Owner, rec.Epoch, o.Lease, abi.Progress{})
	if err := wantErr("renew with the stale epoch", err, session.ErrLost); err != nil {
		return err
	}
	// Even the new owner's name with the old epoch is fenced.
	_, err = s.Renew(ctx, id, "pod-b", rec.Epoch, o.Lease, abi.Progress{})
	if err := wantErr("renew by the new owner with the stale epoch", err, session.ErrLost); err != nil {
		return err
	}
	err = s.CommitSegment(ctx, id, rec.Owner, rec.Epoch, 4, 30000)
	if err := wantErr("commit with the stale epoch", err, session.ErrLost); err != nil {
		return err
	}
	err = s.Release(ctx, id, rec.Owner, rec.Epoch)
	if err := wantErr("release with the stale epoch", err, session.ErrLost); err != nil {
		return err
	}
	err = s.Delete(ctx, id, rec.Owner, rec.Epoch)
	if err := wantErr("delete with the stale epoch", err, session.ErrLost); err != nil {
		return err
	}
	if _, err := s.Renew(ctx, id, "pod-b", nrec.Epoch, o.Lease, abi.Progress{}); err != nil {
		return errorf("renew by the new owner and epoch: %w", err)
	}
	return nil
}

func caseConcurrentTakeover(ctx context.Context, s session.Store, o Options, id string) error {
	rec, err := expiredJob(ctx, s, o, id)
	if err != nil {
		return err
	}
	// Warm up: a host starts pooled plugin instances on demand; let that
	// happen before the race so the racers meet in the store, not in a
	// queue for instance start-up.
	var wg sync.WaitGroup
	for range o.Racers {
		wg.Go(func() { _, _ = s.Get(ctx, id) })
	}
	wg.Wait()
	winners, err := RaceTakeover(ctx, s, id, "racer-", o.Racers, o.Lease)
	if err != nil {
		return err
	}
	if len(winners) != 1 {
		return errorf("%d of %d racers won the takeover, want exactly 1", len(winners), o.Racers)
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		return errorf("get after race: %w", err)
	}
	if got.Epoch != rec.Epoch+1 || got.Owner != winners[0].Owner {
		return errorf("after race: owner %q epoch %d, want winner %q epoch %d", got.Owner, got.Epoch, winners[0].Owner, rec.Epoch+1)
	}
	return nil
}

// RaceTakeover starts n goroutines that take over job id at the same
// moment, as owners prefix+"0".."n-1", and returns the records of
// those that won. A loser must be refused with session.ErrLeaseValid; any
// other error is returned. Exported for tests that race from several
// processes.
func RaceTakeover(ctx context.Context, s session.Store, id, prefix string, n int, lease time.Duration) ([]abi.JobRecord, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []abi.JobRecord
		errs    []error
		start   = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			owner := fmt.Sprintf("%s%d", prefix, i)
			rec, err := s.Takeover(ctx, id, owner, "http://"+owner+":8080", lease)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, rec)
			case !errors.Is(err, session.ErrLeaseValid):
				errs = append(errs, fmt.Errorf("%s: %w", owner, err))
			}
		}()
	}
	close(start)
	wg.Wait()
	return winners, errors.Join(errs...)
}

func caseTryLock(ctx context.Context, s session.Store, o Options, id string) error {
	// A long lock shows refusal without depending on how fast calls are.
	held := id + "-held"
	ok, err := s.TryLock(ctx, held, "pod-a", o.Lease)
	if err != nil || !ok {
		return errorf("try_lock by the first owner: acquired=%v err=%v", ok, err)
	}
	ok, err = s.TryLock(ctx, held, "pod-b", o.Lease)
	if err != nil || ok {
		return errorf("try_lock by a second owner while held: acquired=%v err=%v, want refused", ok, err)
	}
	name := id + "-short"
	ok, err = s.TryLock(ctx, name, "pod-a", o.ShortLease)
	if err != nil || !ok {
		return errorf("try_lock with a short TTL: acquired=%v err=%v", ok, err)
	}
	// The lock ends by the store's clock: poll until the second owner gets it.
	ctx, cancel := context.WithTimeout(ctx, o.ExpiryDeadline)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err = s.TryLock(ctx, name, "pod-b", o.Lease)
		if err != nil {
			return errorf("try_lock after TTL: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return errorf("lock of %v TTL still held after %v", o.ShortLease, o.ExpiryDeadline)
		case <-tick.C:
		}
	}
	ok, err = s.TryLock(ctx, name, "pod-a", o.Lease)
	if err != nil || ok {
		return errorf("try_lock by the first owner after the second took it: acquired=%v err=%v, want refused", ok, err)
	}
	return nil
}

func caseTryLockStateless(ctx context.Context, s session.Store, o Options, id string) error {
	ok, err := s.TryLock(ctx, id+"-lock", "pod-a", o.Lease)
	if err != nil || !ok {
		return errorf("try_lock: acquired=%v err=%v, want acquired", ok, err)
	}
	return nil
}
