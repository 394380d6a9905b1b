package host

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/session"
)

// StoreClient implements session.Store by calling a store plugin.
type StoreClient struct{ c Caller }

// TakeoverClient implements session.TakeoverPolicy by calling a takeover plugin.
type TakeoverClient struct{ c Caller }

// CleanupClient implements session.CleanupRules by calling a cleanup plugin.
type CleanupClient struct{ c Caller }

var (
	_ session.Store          = (*StoreClient)(nil)
	_ session.TakeoverPolicy = (*TakeoverClient)(nil)
	_ session.CleanupRules   = (*CleanupClient)(nil)
)

func NewStoreClient(c Caller) *StoreClient       { return &StoreClient{c: c} }
func NewTakeoverClient(c Caller) *TakeoverClient { return &TakeoverClient{c: c} }
func NewCleanupClient(c Caller) *CleanupClient   { return &CleanupClient{c: c} }

func ms(d time.Duration) int64 { return d.Milliseconds() }

func (s *StoreClient) Create(ctx context.Context, rec abi.JobRecord, lease time.Duration) (abi.JobRecord, bool, error) {
	var r abi.CreateResponse
	if err := s.c.Call(ctx, abi.OpCreate, abi.CreateRequest{Record: rec, LeaseMs: ms(lease)}, &r); err != nil {
		return abi.JobRecord{}, false, err
	}
	return r.Record, r.Created, nil
}

func (s *StoreClient) Get(ctx context.Context, id string) (abi.JobRecord, error) {
	var r abi.GetResponse
	if err := s.c.Call(ctx, abi.OpGet, abi.GetRequest{ID: id}, &r); err != nil {
		return abi.JobRecord{}, err
	}
	return r.Record, nil
}

func (s *StoreClient) Renew(ctx context.Context, id, owner string, epoch int64, lease time.Duration, p abi.Progress) (int64, error) {
	var r abi.RenewResponse
	err := s.c.Call(ctx, abi.OpRenew, abi.RenewRequest{ID: id, Owner: owner, Epoch: epoch, LeaseMs: ms(lease), Progress: p}, &r)
	if err != nil {
		return 0, err
	}
	return r.LeaseExpiresMs, nil
}

func (s *StoreClient) CommitSegment(ctx context.Context, id, owner string, epoch int64, n int, offsetMs int64) error {
	return s.c.Call(ctx, abi.OpCommitSegment, abi.CommitSegmentRequest{ID: id, Owner: owner, Epoch: epoch, Segment: n, OffsetMs: offsetMs}, nil)
}

// Takeover returns the record with the new owner and epoch, or an error
// wrapping session.ErrLeaseValid together with the current record (when the
// plugin sent it).
func (s *StoreClient) Takeover(ctx context.Context, id, owner, ownerURL string, lease time.Duration) (abi.JobRecord, error) {
	var r abi.TakeoverResponse
	err := s.c.Call(ctx, abi.OpTakeover, abi.TakeoverRequest{ID: id, Owner: owner, OwnerURL: ownerURL, LeaseMs: ms(lease)}, &r)
	if err != nil {
		if errors.Is(err, session.ErrLeaseValid) {
			return r.Record, err
		}
		return abi.JobRecord{}, err
	}
	return r.Record, nil
}

func (s *StoreClient) Release(ctx context.Context, id, owner string, epoch int64) error {
	return s.c.Call(ctx, abi.OpRelease, abi.ReleaseRequest{ID: id, Owner: owner, Epoch: epoch}, nil)
}

func (s *StoreClient) Delete(ctx context.Context, id, owner string, epoch int64) error {
	return s.c.Call(ctx, abi.OpDelete, abi.DeleteRequest{ID: id, Owner: owner, Epoch: epoch}, nil)
}

func (s *StoreClient) List(ctx context.Context, f abi.ListRequest) ([]abi.JobRecord, int64, error) {
	var r abi.ListResponse
	if err := s.c.Call(ctx, abi.OpList, f, &r); err != nil {
		return nil, 0, err
	}
	return r.Records, r.NowMs, nil
}

func (s *StoreClient) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	var r abi.TryLockResponse
	if err := s.c.Call(ctx, abi.OpTryLock, abi.TryLockRequest{Name: name, Owner: owner, TTLMs: ms(ttl)}, &r); err != nil {
		return false, err
	}
	return r.Acquired, nil
}

// Decide refuses a decision it does not know, so a confused policy can
// never cause a takeover.
func (t *TakeoverClient) Decide(ctx context.Context, req abi.DecideRequest) (abi.DecideResponse, error) {
	var r abi.DecideResponse
	if err := t.c.Call(ctx, abi.OpDecide, req, &r); err != nil {
		return abi.DecideResponse{}, err
	}
	switch r.Decision {
	case abi.DecideProxy, abi.DecideWait, abi.DecideTakeover:
		return r, nil
	}
	return abi.DecideResponse{}, fmt.Errorf("takeover policy: unknown decision %q: %w", r.Decision, ErrPluginFailed)
}

// Plan refuses the whole plan if any path could leave transcode_dir
// (absolute, "..", backslashes): the cleanup worker checks again, but a
// plugin that proposes such a path is not trusted with the rest either.
func (c *CleanupClient) Plan(ctx context.Context, req abi.PlanRequest) (abi.PlanResponse, error) {
	var r abi.PlanResponse
	if err := c.c.Call(ctx, abi.OpPlan, req, &r); err != nil {
		return abi.PlanResponse{}, err
	}
	for _, p := range r.Delete {
		if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || path.Clean(p) != p ||
			p == "." || p == ".." || strings.HasPrefix(p, "../") {
			return abi.PlanResponse{}, fmt.Errorf("cleanup rules: proposed path %q is not a clean relative path: %w", p, ErrPluginFailed)
		}
	}
	return r, nil
}
