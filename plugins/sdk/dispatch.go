package sdk

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wasmhls/wasmhls/abi"
)

// handle runs one operation and returns the Envelope JSON. It never panics:
// a panic in the plugin becomes status error, so a bug in a plugin is an
// error for the caller and never a silent success.
func handle(op string, req []byte) (out []byte) {
	defer func() {
		if p := recover(); p != nil {
			out = envelope(abi.Envelope{Status: abi.StatusError, Error: fmt.Sprintf("plugin panic in %s: %v", op, p)})
		}
	}()
	if registered == nil {
		return envelope(abi.Envelope{Status: abi.StatusError, Error: errNotRegistered.Error()})
	}
	resp, err := dispatch(registered, op, req)
	return encode(op, resp, err)
}

// dispatch decodes req for op and calls the registered implementation.
// resp is nil for operations without a result.
func dispatch(r *registration, op string, req []byte) (any, error) {
	if op == abi.OpSelfTest {
		return nil, selfTest(r)
	}
	switch {
	case r.store != nil:
		return dispatchStore(r.store, op, req)
	case r.takeover != nil && op == abi.OpDecide:
		var in abi.DecideRequest
		if err := decode(op, req, &in); err != nil {
			return nil, err
		}
		return r.takeover.Decide(in)
	case r.cleanup != nil && op == abi.OpPlan:
		var in abi.PlanRequest
		if err := decode(op, req, &in); err != nil {
			return nil, err
		}
		return r.cleanup.Plan(in)
	}
	return nil, badOp(op, r.desc.Kind)
}

func dispatchStore(s Store, op string, req []byte) (any, error) {
	switch op {
	case abi.OpCreate:
		return call(op, req, s.Create)
	case abi.OpGet:
		return call(op, req, s.Get)
	case abi.OpRenew:
		return call(op, req, s.Renew)
	case abi.OpCommitSegment:
		return call(op, req, noResult(s.CommitSegment))
	case abi.OpTakeover:
		return call(op, req, s.Takeover)
	case abi.OpRelease:
		return call(op, req, noResult(s.Release))
	case abi.OpDelete:
		return call(op, req, noResult(s.Delete))
	case abi.OpList:
		return call(op, req, s.List)
	case abi.OpTryLock:
		return call(op, req, s.TryLock)
	}
	return nil, badOp(op, abi.KindStore)
}

// call decodes the request type of f and runs it. The response is returned
// even with an error so that a StatusError can carry a result.
func call[Req, Resp any](op string, req []byte, f func(Req) (Resp, error)) (any, error) {
	var in Req
	if !fastDecode(req, &in) {
		var zero Req
		in = zero
		if err := decode(op, req, &in); err != nil {
			return nil, err
		}
	}
	out, err := f(in)
	return out, err
}

// empty is the result of operations that have nothing to say but ok.
type empty struct{}

func noResult[Req any](f func(Req) error) func(Req) (empty, error) {
	return func(r Req) (empty, error) { return empty{}, f(r) }
}

func selfTest(r *registration) error {
	var t SelfTester
	switch {
	case r.store != nil:
		t = r.store
	case r.takeover != nil:
		t, _ = r.takeover.(SelfTester)
	case r.cleanup != nil:
		t, _ = r.cleanup.(SelfTester)
	}
	if t == nil {
		return nil
	}
	return t.SelfTest()
}

func decode(op string, req []byte, v any) error {
	if len(req) == 0 {
		req = []byte("{}")
	}
	if err := json.Unmarshal(req, v); err != nil {
		return fmt.Errorf("decode %s request: %w", op, err)
	}
	return nil
}

func badOp(op, kind string) error {
	return StatusError{Status: abi.StatusBadOp, Msg: fmt.Sprintf("operation %q is not supported by a %s plugin", op, kind)}
}

// encode turns an operation's outcome into the Envelope JSON.
func encode(op string, resp any, err error) []byte {
	env := abi.Envelope{Status: abi.StatusOK}
	if err != nil {
		var se StatusError
		if !errors.As(err, &se) {
			return envelope(abi.Envelope{Status: abi.StatusError, Error: err.Error()})
		}
		env.Status, env.Error = se.Status, se.Msg
		if env.Status == "" {
			env.Status = abi.StatusError
		}
		if env.Status != abi.StatusConflict {
			// Only ok and conflict (the current record) carry a result:
			// the host must never act on a zero record from a failure.
			return envelope(env)
		}
	}
	if b, ok := fastEncode(resp); ok {
		env.Result = b
	} else if resp != nil {
		b, merr := json.Marshal(resp)
		if merr != nil {
			return envelope(abi.Envelope{Status: abi.StatusError, Error: fmt.Sprintf("encode %s response: %v", op, merr)})
		}
		env.Result = b
	}
	return envelope(env)
}

// envelope writes the Envelope JSON by hand instead of json.Marshal, which
// would re-scan (compact) the already-encoded result byte by byte. Inside
// wasm every loop iteration is costly (with the host's call deadline each
// one leaves to the host to check for cancellation), so a call's cost is
// roughly the number of loop iterations it runs; see docs/PLUGINS.md
// "Performance". Result comes from json.Marshal, so it is valid and compact.
func envelope(e abi.Envelope) []byte {
	b := make([]byte, 0, 32+len(e.Error)+len(e.Result))
	b = append(b, `{"status":`...)
	b = appendJSONString(b, e.Status)
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, e.Error)
	}
	if len(e.Result) > 0 {
		b = append(b, `,"result":`...)
		b = append(b, e.Result...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. The known statuses are
// copied as they are; anything else goes through encoding/json, so the
// escaping rules are the standard ones.
func appendJSONString(b []byte, s string) []byte {
	switch s {
	case abi.StatusOK, abi.StatusError, abi.StatusLost, abi.StatusNotFound, abi.StatusConflict, abi.StatusBadOp:
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, err := json.Marshal(s)
	if err != nil { // a string always encodes; keep the answer valid anyway
		return append(b, `"sdk: unencodable string"`...)
	}
	return append(b, q...)
}
