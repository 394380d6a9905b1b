package sdk

import (
	"sync"

	"github.com/wasmhls/wasmhls/abi"
)

// LazyStore returns a Store built by newStore on its first operation. Host
// capabilities (config, redis) are meant to be used while serving calls, not
// from init, so a plugin reads its configuration here. The host's load-time
// self_test is the first call, so a bad configuration fails the load with
// newStore's error; the error is kept and returned by every later call.
func LazyStore(newStore func() (Store, error)) Store {
	return &lazyStore{build: newStore}
}

type lazyStore struct {
	build func() (Store, error)
	once  sync.Once
	s     Store
	err   error
}

func (l *lazyStore) get() (Store, error) {
	l.once.Do(func() { l.s, l.err = l.build() })
	return l.s, l.err
}

func (l *lazyStore) Create(r abi.CreateRequest) (abi.CreateResponse, error) {
	s, err := l.get()
	if err != nil {
		return abi.CreateResponse{}, err
	}
	return s.Create(r)
}

func (l *lazyStore) Get(r abi.GetRequest) (abi.GetResponse, error) {
	s, err := l.get()
	if err != nil {
		return abi.GetResponse{}, err
	}
	return s.Get(r)
}

func (l *lazyStore) Renew(r abi.RenewRequest) (abi.RenewResponse, error) {
	s, err := l.get()
	if err != nil {
		return abi.RenewResponse{}, err
	}
	return s.Renew(r)
}

func (l *lazyStore) CommitSegment(r abi.CommitSegmentRequest) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.CommitSegment(r)
}

func (l *lazyStore) Takeover(r abi.TakeoverRequest) (abi.TakeoverResponse, error) {
	s, err := l.get()
	if err != nil {
		return abi.TakeoverResponse{}, err
	}
	return s.Takeover(r)
}

func (l *lazyStore) Release(r abi.ReleaseRequest) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Release(r)
}

func (l *lazyStore) Delete(r abi.DeleteRequest) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Delete(r)
}

func (l *lazyStore) List(r abi.ListRequest) (abi.ListResponse, error) {
	s, err := l.get()
	if err != nil {
		return abi.ListResponse{}, err
	}
	return s.List(r)
}

func (l *lazyStore) TryLock(r abi.TryLockRequest) (abi.TryLockResponse, error) {
	s, err := l.get()
	if err != nil {
		return abi.TryLockResponse{}, err
	}
	return s.TryLock(r)
}

func (l *lazyStore) SelfTest() error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.SelfTest()
}
