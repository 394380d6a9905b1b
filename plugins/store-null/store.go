package main

import (
	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk"
)

// nullStore keeps nothing. now is the clock used for lease expiries in
// answers (the host's, through the clock capability).
type nullStore struct {
	now func() int64
}

var _ sdk.Store = nullStore{}

func (s nullStore) Create(r abi.CreateRequest) (abi.CreateResponse, error) {
	rec := r.Record
	if rec.ID == "" {
		return abi.CreateResponse{}, errMissing("create", "record.id")
	}
	now := s.now()
	if rec.Epoch == 0 {
		rec.Epoch = 1
	}
	if rec.State == "" {
		rec.State = abi.StateActive
	}
	rec.LeaseExpiresMs = now + r.LeaseMs
	rec.UpdatedMs = now
	rec.NowMs = now
	return abi.CreateResponse{Created: true, Record: rec}, nil
}

func (s nullStore) Get(r abi.GetRequest) (abi.GetResponse, error) {
	return abi.GetResponse{}, sdk.NotFound("store-null keeps no records (job %q)", r.ID)
}

func (s nullStore) Renew(r abi.RenewRequest) (abi.RenewResponse, error) {
	return abi.RenewResponse{LeaseExpiresMs: s.now() + r.LeaseMs}, nil
}

func (nullStore) CommitSegment(abi.CommitSegmentRequest) error { return nil }

func (s nullStore) Takeover(r abi.TakeoverRequest) (abi.TakeoverResponse, error) {
	if r.ID == "" {
		return abi.TakeoverResponse{}, errMissing("takeover", "id")
	}
	now := s.now()
	return abi.TakeoverResponse{Record: abi.JobRecord{
		ID: r.ID, Owner: r.Owner, OwnerURL: r.OwnerURL, Epoch: 1,
		LeaseExpiresMs: now + r.LeaseMs, State: abi.StateActive,
		LastCompletedSegment: -1, LastRequestedSegment: -1,
		UpdatedMs: now, NowMs: now,
	}}, nil
}

func (nullStore) Release(abi.ReleaseRequest) error { return nil }

func (nullStore) Delete(abi.DeleteRequest) error { return nil }

func (s nullStore) List(abi.ListRequest) (abi.ListResponse, error) {
	return abi.ListResponse{Records: []abi.JobRecord{}, NowMs: s.now()}, nil
}

func (nullStore) TryLock(abi.TryLockRequest) (abi.TryLockResponse, error) {
	return abi.TryLockResponse{Acquired: true}, nil
}

// SelfTest checks that the clock capability answers.
func (s nullStore) SelfTest() error {
	if s.now() <= 0 {
		return sdk.StatusError{Status: abi.StatusError, Msg: "clock capability returned no time"}
	}
	return nil
}

func errMissing(op, field string) error {
	return sdk.StatusError{Status: abi.StatusError, Msg: op + ": " + field + " is empty"}
}
