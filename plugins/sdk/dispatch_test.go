package sdk

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
)

// fakeStore answers get from a map and fails the other ways on request.
type fakeStore struct {
	Store // unimplemented methods panic, which the kit must turn into status error
	recs  map[string]abi.JobRecord
}

func (f fakeStore) Get(r abi.GetRequest) (abi.GetResponse, error) {
	rec, ok := f.recs[r.ID]
	if !ok {
		return abi.GetResponse{}, NotFound("no job %q", r.ID)
	}
	return abi.GetResponse{Record: rec}, nil
}

func (f fakeStore) Takeover(r abi.TakeoverRequest) (abi.TakeoverResponse, error) {
	return abi.TakeoverResponse{Record: f.recs[r.ID]}, Conflict("lease valid")
}

func (f fakeStore) Release(abi.ReleaseRequest) error { return errors.New("boom") }

func (f fakeStore) CommitSegment(abi.CommitSegmentRequest) error { return nil }

func (f fakeStore) SelfTest() error { return nil }

func decodeEnv(t *testing.T, b []byte) abi.Envelope {
	t.Helper()
	var e abi.Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("envelope %s: %v", b, err)
	}
	return e
}

func TestHandle(t *testing.T) {
	old := registered
	t.Cleanup(func() { registered = old })
	registered = nil
	if e := decodeEnv(t, handle(abi.OpGet, nil)); e.Status != abi.StatusError {
		t.Fatalf("unregistered: status %q", e.Status)
	}
	RegisterStore(abi.Description{Name: "fake"}, fakeStore{recs: map[string]abi.JobRecord{"a": {ID: "a", Epoch: 4}}})
	if registered.desc.Kind != abi.KindStore || registered.desc.ABI != abi.Version {
		t.Fatalf("description not completed: %+v", registered.desc)
	}
	cases := []struct {
		op, req, status string
		result          bool
	}{
		{abi.OpGet, `{"id":"a"}`, abi.StatusOK, true},
		{abi.OpGet, `{"id":"b"}`, abi.StatusNotFound, false},
		{abi.OpTakeover, `{"id":"a"}`, abi.StatusConflict, true},
		{abi.OpRelease, `{"id":"a"}`, abi.StatusError, false},
		{abi.OpCommitSegment, `{"id":"a"}`, abi.StatusOK, true},
		{abi.OpRenew, `{"id":"a"}`, abi.StatusError, false}, // nil embedded Store: panic recovered
		{abi.OpGet, `{"id":`, abi.StatusError, false},
		{"nonsense", `{}`, abi.StatusBadOp, false},
		{abi.OpDecide, `{}`, abi.StatusBadOp, false},
		{abi.OpSelfTest, ``, abi.StatusOK, false},
	}
	for _, c := range cases {
		e := decodeEnv(t, handle(c.op, []byte(c.req)))
		if e.Status != c.status {
			t.Errorf("%s %s: status %q (%s), want %q", c.op, c.req, e.Status, e.Error, c.status)
		}
		if (len(e.Result) > 0) != c.result {
			t.Errorf("%s %s: result %s, want present=%v", c.op, c.req, e.Result, c.result)
		}
		if c.status != abi.StatusOK && e.Error == "" {
			t.Errorf("%s %s: status %s without an error message", c.op, c.req, c.status)
		}
	}
	var got abi.GetResponse
	_ = json.Unmarshal(decodeEnv(t, handle(abi.OpGet, []byte(`{"id":"a"}`))).Result, &got)
	if got.Record.Epoch != 4 {
		t.Fatalf("get result epoch %d, want 4", got.Record.Epoch)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	old := registered
	t.Cleanup(func() { registered = old })
	registered = nil
	RegisterCleanup(abi.Description{Name: "x"}, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("second registration accepted")
		}
	}()
	RegisterTakeover(abi.Description{Name: "y"}, nil)
}

func TestStrictConfig(t *testing.T) {
	var v struct {
		A int `json:"a"`
	}
	if err := decodeStrict([]byte(`{"a":1,"typo":2}`), &v); err == nil {
		t.Fatal("unknown key accepted")
	}
	if err := decodeStrict([]byte(`{"a":3}`), &v); err != nil || v.A != 3 {
		t.Fatalf("decode: %v, a=%d", err, v.A)
	}
	if err := decodeStrict(nil, &v); err != nil {
		t.Fatalf("absent config: %v", err)
	}
}
