package conformance

import (
	"context"
	"slices"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/session"
)

// The takeover and cleanup suites check safety, which every policy must
// keep whatever else it decides: never take over a valid lease, never
// propose a directory with a live lease or one it was not shown. How eagerly
// a policy takes over or deletes is its own business (the default plugins'
// tables test that).

const suiteNow = int64(1_700_000_000_000)

func takeoverCases() []Case {
	return []Case{
		{Name: "valid_lease_not_taken", Doc: "an active record with a valid lease owned by another pod is never taken over", takeover: caseValidLeaseNotTaken},
		{Name: "valid_lease_own_name", Doc: "a valid lease naming this pod is not taken over either (no self-fencing loop)", takeover: caseValidLeaseOwnName},
		{Name: "no_store_time", Doc: "without the store's now_ms an active record is not taken over", takeover: caseNoStoreTime},
		{Name: "known_decisions", Doc: "released, expired and valid records get proxy, wait or takeover (or an error), nothing else", takeover: caseKnownDecisions},
	}
}

func decideRecord(owner string, expiresMs int64, state string) abi.JobRecord {
	r := record("decide-"+owner, owner)
	r.Epoch, r.LeaseExpiresMs, r.State = 3, expiresMs, state
	return r
}

func knownDecision(d abi.DecideResponse) error {
	switch d.Decision {
	case abi.DecideProxy, abi.DecideTakeover:
		return nil
	case abi.DecideWait:
		if d.RetryAfterMs < 0 {
			return errorf("wait with retry_after_ms %d < 0", d.RetryAfterMs)
		}
		return nil
	}
	return errorf("unknown decision %q", d.Decision)
}

func caseValidLeaseNotTaken(ctx context.Context, p session.TakeoverPolicy) error {
	for _, left := range []int64{1, 1000, 30_000} {
		req := abi.DecideRequest{Record: decideRecord("pod-a", suiteNow+left, abi.StateActive), NowMs: suiteNow, Pod: "pod-b", RequestedSegment: 2}
		d, err := p.Decide(ctx, req)
		if err != nil {
			continue // an error never leads to a takeover
		}
		if d.Decision == abi.DecideTakeover {
			return errorf("lease valid for %d ms more: decision takeover", left)
		}
		if err := knownDecision(d); err != nil {
			return err
		}
	}
	return nil
}

func caseValidLeaseOwnName(ctx context.Context, p session.TakeoverPolicy) error {
	req := abi.DecideRequest{Record: decideRecord("pod-b", suiteNow+10_000, abi.StateActive), NowMs: suiteNow, Pod: "pod-b"}
	d, err := p.Decide(ctx, req)
	if err == nil && d.Decision == abi.DecideTakeover {
		return errorf("valid lease naming this pod: decision takeover")
	}
	return nil
}

func caseNoStoreTime(ctx context.Context, p session.TakeoverPolicy) error {
	req := abi.DecideRequest{Record: decideRecord("pod-a", suiteNow+10_000, abi.StateActive), Pod: "pod-b"}
	d, err := p.Decide(ctx, req)
	if err == nil && d.Decision == abi.DecideTakeover {
		return errorf("no now_ms in the request nor the record: decision takeover")
	}
	return nil
}

func caseKnownDecisions(ctx context.Context, p session.TakeoverPolicy) error {
	for _, rec := range []abi.JobRecord{
		decideRecord("pod-a", suiteNow, abi.StateReleased),
		decideRecord("pod-a", suiteNow-60_000, abi.StateActive),
		decideRecord("pod-a", suiteNow+60_000, abi.StateActive),
	} {
		d, err := p.Decide(ctx, abi.DecideRequest{Record: rec, NowMs: suiteNow, Pod: "pod-b", PodJobs: 1})
		if err != nil {
			continue
		}
		if err := knownDecision(d); err != nil {
			return errorf("state %s lease %+d ms: %w", rec.State, rec.LeaseExpiresMs-suiteNow, err)
		}
	}
	return nil
}

func cleanupCases() []Case {
	return []Case{
		{Name: "live_lease_kept", Doc: "a directory with a live lease is never proposed, however old or large", cleanup: caseLiveLeaseKept},
		{Name: "only_known_paths", Doc: "only paths from the request are proposed, each once", cleanup: caseOnlyKnownPaths},
		{Name: "recent_kept", Doc: "under the high-water mark, nothing younger than max_age is proposed", cleanup: caseRecentKept},
	}
}

func dir(path string, ageMs, bytes int64, live bool, refs ...string) abi.CleanupDir {
	return abi.CleanupDir{Path: path, Bytes: bytes, ModTimeMs: suiteNow - ageMs, AccessMs: suiteNow - ageMs, Referenced: append([]string{}, refs...), LiveLease: live}
}

func plan(ctx context.Context, r session.CleanupRules, req abi.PlanRequest) ([]string, error) {
	resp, err := r.Plan(ctx, req)
	if err != nil {
		return nil, errorf("plan: %w", err)
	}
	return resp.Delete, nil
}

func caseLiveLeaseKept(ctx context.Context, r session.CleanupRules) error {
	const day = 86_400_000
	req := abi.PlanRequest{NowMs: suiteNow, MaxAgeMs: 1000, HighWaterBytes: 1, TotalBytes: 3 << 30,
		Dirs: []abi.CleanupDir{
			dir("a/live-old", 30*day, 1<<30, true, "job-1"),
			dir("a/live-new", 0, 1<<30, true, "job-2"),
			dir("b/dead-old", 30*day, 1<<30, false),
		}}
	del, err := plan(ctx, r, req)
	if err != nil {
		return err
	}
	for _, p := range del {
		if p == "a/live-old" || p == "a/live-new" {
			return errorf("proposed %s, which a job with a live lease references", p)
		}
	}
	return nil
}

func caseOnlyKnownPaths(ctx context.Context, r session.CleanupRules) error {
	const day = 86_400_000
	req := abi.PlanRequest{NowMs: suiteNow, MaxAgeMs: day, HighWaterBytes: 10, TotalBytes: 400,
		Dirs: []abi.CleanupDir{
			dir("x/1", 2*day, 100, false), dir("x/2", 3*day, 100, false, "job-9"),
			dir("y/1", 0, 100, false), dir("y/2", 10, 100, false),
		}}
	del, err := plan(ctx, r, req)
	if err != nil {
		return err
	}
	known := []string{"x/1", "x/2", "y/1", "y/2"}
	seen := map[string]bool{}
	for _, p := range del {
		if !slices.Contains(known, p) {
			return errorf("proposed %q, which was not in the request", p)
		}
		if seen[p] {
			return errorf("proposed %q twice", p)
		}
		seen[p] = true
	}
	return nil
}

func caseRecentKept(ctx context.Context, r session.CleanupRules) error {
	const hour = 3_600_000
	req := abi.PlanRequest{NowMs: suiteNow, MaxAgeMs: 24 * hour, HighWaterBytes: 1 << 40, TotalBytes: 300,
		Dirs: []abi.CleanupDir{dir("r/1", hour, 100, false), dir("r/2", 2*hour, 100, false, "job-3"), dir("r/3", 0, 100, false)}}
	del, err := plan(ctx, r, req)
	if err != nil {
		return err
	}
	if len(del) > 0 {
		return errorf("proposed %v though every directory is younger than max_age and the disk is under the mark", del)
	}
	return nil
}
