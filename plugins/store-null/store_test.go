package main

import (
	"errors"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk"
)

func TestNullStore(t *testing.T) {
	s := nullStore{now: func() int64 { return 1000 }}
	c, err := s.Create(abi.CreateRequest{Record: abi.JobRecord{ID: "j", Owner: "a", Item: "i"}, LeaseMs: 500})
	if err != nil || !c.Created || c.Record.Epoch != 1 || c.Record.LeaseExpiresMs != 1500 || c.Record.Item != "i" || c.Record.State != abi.StateActive {
		t.Fatalf("create: %+v %v", c, err)
	}
	c, _ = s.Create(abi.CreateRequest{Record: abi.JobRecord{ID: "j", Epoch: 7}, LeaseMs: 500})
	if c.Record.Epoch != 7 {
		t.Fatalf("create kept epoch %d, want the given 7", c.Record.Epoch)
	}
	if _, err := s.Create(abi.CreateRequest{}); err == nil {
		t.Fatal("create without id accepted")
	}
	var se sdk.StatusError
	if _, err := s.Get(abi.GetRequest{ID: "j"}); !errors.As(err, &se) || se.Status != abi.StatusNotFound {
		t.Fatalf("get: %v, want not_found", err)
	}
	if r, err := s.Renew(abi.RenewRequest{ID: "j", LeaseMs: 100}); err != nil || r.LeaseExpiresMs != 1100 {
		t.Fatalf("renew: %+v %v", r, err)
	}
	if tk, err := s.Takeover(abi.TakeoverRequest{ID: "j", Owner: "b", OwnerURL: "u", LeaseMs: 10}); err != nil || tk.Record.Owner != "b" || tk.Record.Epoch != 1 {
		t.Fatalf("takeover: %+v %v", tk, err)
	}
	if l, err := s.List(abi.ListRequest{}); err != nil || l.Records == nil || len(l.Records) != 0 || l.NowMs != 1000 {
		t.Fatalf("list: %+v %v (records must be [] not null)", l, err)
	}
	if l, err := s.TryLock(abi.TryLockRequest{Name: "x"}); err != nil || !l.Acquired {
		t.Fatalf("try_lock: %+v %v", l, err)
	}
	if err := (nullStore{now: func() int64 { return 0 }}).SelfTest(); err == nil {
		t.Fatal("self test passed without a clock")
	}
}
