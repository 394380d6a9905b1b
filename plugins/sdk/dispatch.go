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
	if err := decode(op, req, &in); err != nil {
		return nil, err
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
	if resp != nil {
		b, merr := json.Marshal(resp)
		if merr != nil {
			return envelope(abi.Envelope{Status: abi.StatusError, Error: fmt.Sprintf("encode %s response: %v", op, merr)})
		}
		env.Result = b
	}
	return envelope(env)
}

func envelope(e abi.Envelope) []byte {
	b, err := json.Marshal(e)
	if err != nil {
		// Envelope has only strings and raw JSON that was produced by
		// json.Marshal, so this cannot happen; keep a valid answer anyway.
		return []byte(`{"status":"error","error":"sdk: cannot encode envelope"}`)
	}
	return b
}
