package conformance_test

// The suite must be able to fail: run it against session.MemoryStore (the
// in-process reference) and against deliberately broken wrappers of it,
// and check that exactly the cases that guard the broken rule fail.

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/conformance"
	"github.com/wasmhls/wasmhls/session"
)

func TestMemoryStoreReference(t *testing.T) {
	conformance.RunT(t, session.NewMemoryStore(nil), conformance.Options{})
}

// unfenced ignores lost on renew: a pod that was taken over keeps writing.
type unfenced struct{ session.Store }

func (u unfenced) Renew(ctx context.Context, id, owner string, epoch int64, lease time.Duration, p abi.Progress) (int64, error) {
	exp, err := u.Store.Renew(ctx, id, owner, epoch, lease, p)
	if errors.Is(err, session.ErrLost) {
		return time.Now().Add(lease).UnixMilli(), nil
	}
	return exp, err
}

// stealing takes over valid leases by releasing them first.
type stealing struct{ session.Store }

func (s stealing) Takeover(ctx context.Context, id, owner, url string, lease time.Duration) (abi.JobRecord, error) {
	cur, err := s.Store.Takeover(ctx, id, owner, url, lease)
	if errors.Is(err, session.ErrLeaseValid) {
		if err := s.Store.Release(ctx, id, cur.Owner, cur.Epoch); err != nil {
			return cur, err
		}
		return s.Store.Takeover(ctx, id, owner, url, lease)
	}
	return cur, err
}

func failedCases(rs []conformance.Result) []string {
	var out []string
	for _, r := range rs {
		if r.Err != nil {
			out = append(out, r.Name)
		}
	}
	return out
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	for _, c := range []struct {
		name string
		s    session.Store
		must []string
	}{
		{"unfenced renew", unfenced{session.NewMemoryStore(nil)}, []string{"renew_fenced", "stale_epoch", "release"}},
		{"stealing takeover", stealing{session.NewMemoryStore(nil)}, []string{"takeover_valid_lease", "expiry"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			failed := failedCases(conformance.Run(t.Context(), c.s, conformance.Options{ExpiryDeadline: 5 * time.Second}))
			for _, name := range c.must {
				if !slices.Contains(failed, name) {
					t.Errorf("case %s passed against a %s store (failed: %v)", name, c.name, failed)
				}
			}
		})
	}
}

// A policy that takes over everything and rules that delete everything
// fail their safety suites.
type greedyPolicy struct{}

func (greedyPolicy) Decide(context.Context, abi.DecideRequest) (abi.DecideResponse, error) {
	return abi.DecideResponse{Decision: abi.DecideTakeover}, nil
}

type greedyRules struct{}

func (greedyRules) Plan(_ context.Context, r abi.PlanRequest) (abi.PlanResponse, error) {
	var out abi.PlanResponse
	for _, d := range r.Dirs {
		out.Delete = append(out.Delete, d.Path)
	}
	return out, nil
}

func TestSuiteCatchesUnsafePolicies(t *testing.T) {
	failed := failedCases(conformance.RunTakeover(t.Context(), greedyPolicy{}))
	for _, name := range []string{"valid_lease_not_taken", "valid_lease_own_name", "no_store_time"} {
		if !slices.Contains(failed, name) {
			t.Errorf("takeover case %s passed a policy that always takes over", name)
		}
	}
	failed = failedCases(conformance.RunCleanup(t.Context(), greedyRules{}))
	for _, name := range []string{"live_lease_kept", "recent_kept"} {
		if !slices.Contains(failed, name) {
			t.Errorf("cleanup case %s passed rules that delete everything", name)
		}
	}
	if n := len(conformance.Cases(abi.KindStore)); n < 15 {
		t.Errorf("Cases(store) lists %d cases", n)
	}
}
