package session

import (
	"context"
	"errors"
	"time"

	"github.com/wasmhls/wasmhls/abi"
)

// Errors a Store returns; the host maps envelope statuses onto them.
var (
	// ErrLost: owner or epoch no longer match (the job was taken over).
	ErrLost = errors.New("session: lease lost (fenced)")
	// ErrNotFound: no such job record.
	ErrNotFound = errors.New("session: job not found")
	// ErrLeaseValid: takeover refused because the owner's lease is still valid.
	ErrLeaseValid = errors.New("session: lease still valid")
)

// Store is the session store as the session layer sees it: every operation
// of DESIGN.md's lease protocol, each atomic. host.StoreClient implements it
// by calling the store plugin; tests may use any implementation that passes
// the conformance suite (plugins/conformance).
type Store interface {
	// Create stores rec if no record with rec.ID exists. It returns the
	// stored record and whether it was created (false: the existing one).
	Create(ctx context.Context, rec abi.JobRecord, lease time.Duration) (abi.JobRecord, bool, error)
	Get(ctx context.Context, id string) (abi.JobRecord, error)
	Renew(ctx context.Context, id, owner string, epoch int64, lease time.Duration, p abi.Progress) (expiresMs int64, err error)
	CommitSegment(ctx context.Context, id, owner string, epoch int64, n int, offsetMs int64) error
	// Takeover returns the record with the new owner and epoch+1, or
	// ErrLeaseValid with the current record.
	Takeover(ctx context.Context, id, owner, ownerURL string, lease time.Duration) (abi.JobRecord, error)
	Release(ctx context.Context, id, owner string, epoch int64) error
	Delete(ctx context.Context, id, owner string, epoch int64) error
	List(ctx context.Context, f abi.ListRequest) (recs []abi.JobRecord, nowMs int64, err error)
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
}

// TakeoverPolicy decides what a non-owner does with a request (host.TakeoverClient).
type TakeoverPolicy interface {
	Decide(ctx context.Context, req abi.DecideRequest) (abi.DecideResponse, error)
}

// CleanupRules proposes directories to delete (host.CleanupClient).
type CleanupRules interface {
	Plan(ctx context.Context, req abi.PlanRequest) (abi.PlanResponse, error)
}
