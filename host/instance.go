package host

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmhls/wasmhls/abi"
)

// instance is one instantiated module. It is single-threaded: the pool
// hands it to one caller at a time.
type instance struct {
	mod                         api.Module
	mem                         api.Memory
	malloc, free, callFn, descr api.Function
	version                     api.Function
	stack                       [4]uint64
	// buf is a request buffer owned by the host and reused across calls,
	// so a call costs one guest entry (plus one free of the response)
	// instead of an allocation round trip.
	buf, bufCap uint32
	calls       int
}

func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	// _initialize (Go's runtime start) runs under the call deadline too, so
	// a plugin that loops in init cannot hang a load.
	ictx, cancel := context.WithTimeout(ctx, p.callTimeout())
	defer cancel()
	mod, err := p.rt.InstantiateModule(ictx, p.compiled, p.modCfg)
	if err != nil {
		return nil, explain(ictx, ctx, err, p.callTimeout())
	}
	in := &instance{
		mod:     mod,
		mem:     mod.Memory(),
		malloc:  mod.ExportedFunction(abi.ExportMalloc),
		free:    mod.ExportedFunction(abi.ExportFree),
		callFn:  mod.ExportedFunction(abi.ExportCall),
		descr:   mod.ExportedFunction(abi.ExportDescribe),
		version: mod.ExportedFunction(abi.ExportABIVersion),
	}
	if in.mem == nil {
		_ = mod.Close(ctx)
		return nil, errors.New("module exports no memory")
	}
	p.metrics.instances(p.slot, 1)
	return in, nil
}

func (in *instance) close(ctx context.Context) { _ = in.mod.Close(ctx) }

// explain turns a wazero error after a deadline into a readable one.
func explain(callCtx, parent context.Context, err error, timeout time.Duration) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			if parent.Err() == nil {
				return fmt.Errorf("exceeded the call timeout of %v: %w", timeout, err)
			}
			return fmt.Errorf("caller's deadline: %w", err)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("caller canceled: %w", err)
		default:
			return fmt.Errorf("guest exited with code %d (a panic or out of memory): %w", exit.ExitCode(), err)
		}
	}
	if callCtx.Err() != nil && parent.Err() == nil {
		return fmt.Errorf("exceeded the call timeout of %v: %w", timeout, err)
	}
	// A wasm trap (a Go guest's panic or fatal error ends in unreachable).
	return fmt.Errorf("trapped: %w", err)
}

func (in *instance) abiVersion(ctx context.Context, timeout time.Duration) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := in.version.Call(cctx)
	if err != nil {
		return 0, explain(cctx, ctx, err, timeout)
	}
	if len(r) != 1 {
		return 0, errors.New("returns no value")
	}
	return int(int32(uint32(r[0]))), nil
}

func (in *instance) describe(ctx context.Context, timeout time.Duration, maxLen int) (abi.Description, error) {
	var d abi.Description
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := in.descr.Call(cctx)
	if err != nil {
		return d, explain(cctx, ctx, err, timeout)
	}
	if len(r) != 1 {
		return d, errors.New("returns no value")
	}
	raw, err := in.take(cctx, r[0], maxLen)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("description is not JSON: %w", err)
	}
	return d, nil
}

// take copies out and frees the guest buffer a packed ptr<<32|len names.
func (in *instance) take(ctx context.Context, packed uint64, maxLen int) ([]byte, error) {
	ptr, n := uint32(packed>>32), uint32(packed)
	if int64(n) > int64(maxLen) {
		in.stack[0] = uint64(ptr)
		_ = in.free.CallWithStack(ctx, in.stack[:])
		return nil, fmt.Errorf("%w: %d bytes exceed the %d-byte limit (max_message_kb)", errOversize, n, maxLen)
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("response at %#x+%d lies outside guest memory (%d bytes)", ptr, n, in.mem.Size())
	}
	out := make([]byte, n)
	copy(out, b)
	in.stack[0] = uint64(ptr)
	if err := in.free.CallWithStack(ctx, in.stack[:]); err != nil {
		return nil, fmt.Errorf("%s: %w", abi.ExportFree, err)
	}
	return out, nil
}

// call runs one operation and returns the raw envelope. broken reports
// that the instance must not be used again (a trap, a timeout, an exit,
// a response pointer outside memory).
func (in *instance) call(ctx context.Context, op string, req []byte, timeout time.Duration, noTimeout bool, maxLen int) (raw []byte, broken bool, err error) {
	cctx := ctx
	if !noTimeout {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cctx = withCallState(cctx)
	in.calls++
	need := uint32(len(op) + len(req))
	if need > in.bufCap {
		if in.buf != 0 {
			in.stack[0] = uint64(in.buf)
			if err := in.free.CallWithStack(cctx, in.stack[:]); err != nil {
				return nil, true, explain(cctx, ctx, err, timeout)
			}
			in.buf, in.bufCap = 0, 0
		}
		size := max(need, 4096)
		in.stack[0] = uint64(size)
		if err := in.malloc.CallWithStack(cctx, in.stack[:]); err != nil {
			return nil, true, explain(cctx, ctx, err, timeout)
		}
		in.buf, in.bufCap = uint32(in.stack[0]), size
	}
	if !in.mem.WriteString(in.buf, op) || !in.mem.Write(in.buf+uint32(len(op)), req) {
		return nil, true, fmt.Errorf("%s returned %#x, outside guest memory", abi.ExportMalloc, in.buf)
	}
	in.stack = [4]uint64{uint64(in.buf), uint64(len(op)), uint64(in.buf) + uint64(len(op)), uint64(len(req))}
	if err := in.callFn.CallWithStack(cctx, in.stack[:]); err != nil {
		return nil, true, explain(cctx, ctx, err, timeout)
	}
	raw, err = in.take(cctx, in.stack[0], maxLen)
	if err != nil {
		// A bad pointer or a failing free leaves the instance suspect.
		return nil, cctx.Err() != nil || !errors.Is(err, errOversize), err
	}
	return raw, false, nil
}

var errOversize = errors.New("response too large")

// cryptoRand feeds the guest's random_get from the OS, not a fixed seed.
type cryptoRand struct{}

func (cryptoRand) Read(b []byte) (int, error) { return rand.Read(b) }
