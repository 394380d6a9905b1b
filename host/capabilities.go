package host

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmhls/wasmhls/abi"
)

// maxLogBytes caps one log line from a guest.
const maxLogBytes = 16 << 10

// callState lives in the context of one wasmhls_call. It holds a redis
// response that did not fit the guest's buffer, so the guest's retry with
// a bigger buffer gets that response instead of running the command again.
type callState struct {
	pendingReq  []byte
	pendingResp []byte
}

type callStateKey struct{}

func withCallState(ctx context.Context) context.Context {
	return context.WithValue(ctx, callStateKey{}, &callState{})
}

func stateOf(ctx context.Context) *callState {
	s, _ := ctx.Value(callStateKey{}).(*callState)
	return s
}

// instantiateHostModule exports only the functions of granted
// capabilities: a module importing anything else fails to instantiate.
func (p *Plugin) instantiateHostModule(ctx context.Context, granted map[string]bool) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	b := p.rt.NewHostModuleBuilder(abi.HostModule)
	if granted[abi.CapLog] {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(p.hostLog),
			[]api.ValueType{i32, i32, i32}, nil).Export(abi.FuncLog)
	}
	if granted[abi.CapClock] {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			stack[0] = api.EncodeI64(time.Now().UnixMilli())
		}), nil, []api.ValueType{i64}).Export(abi.FuncNowMs)
	}
	if granted[abi.CapConfig] {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(p.hostConfig),
			[]api.ValueType{i32, i32}, []api.ValueType{i32}).Export(abi.FuncConfig)
	}
	if granted[abi.CapRedis] {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(p.hostRedis),
			[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export(abi.FuncRedis)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// hostLog: log(level, msg_ptr, msg_len). level is a slog.Level value
// (-4 debug, 0 info, 4 warn, 8 error).
func (p *Plugin) hostLog(ctx context.Context, m api.Module, stack []uint64) {
	level := slog.Level(api.DecodeI32(stack[0]))
	ptr, n := api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	truncated := false
	if n > maxLogBytes {
		n, truncated = maxLogBytes, true
	}
	msg, ok := m.Memory().Read(ptr, n)
	if !ok {
		p.log.Warn("plugin log message outside its memory", "ptr", ptr, "len", n)
		return
	}
	if truncated {
		p.log.Log(ctx, level, string(msg), "truncated", true)
		return
	}
	p.log.Log(ctx, level, string(msg))
}

// hostConfig: config(out_ptr, out_cap) -> len of the slot's config JSON.
func (p *Plugin) hostConfig(_ context.Context, m api.Module, stack []uint64) {
	stack[0] = api.EncodeI32(writeOut(m, p.configJSON, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
}

// writeOut implements the "write if it fits, return the length needed"
// convention of every host function that returns data.
func writeOut(m api.Module, data []byte, ptr, capacity uint32) int32 {
	if uint64(len(data)) > uint64(capacity) {
		return int32(len(data))
	}
	if !m.Memory().Write(ptr, data) {
		return abi.HostErrFailed
	}
	return int32(len(data))
}

// hostRedis: redis(req_ptr, req_len, out_ptr, out_cap) -> len of a
// RedisResponse JSON (a command error is a response with Error set);
// HostErrTooLarge for an oversize request, HostErrFailed when the request
// cannot be read or decoded.
func (p *Plugin) hostRedis(ctx context.Context, m api.Module, stack []uint64) {
	reqPtr, reqLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	outPtr, outCap := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	if int64(reqLen) > int64(p.maxMsg) {
		stack[0] = api.EncodeI32(abi.HostErrTooLarge)
		return
	}
	req, ok := m.Memory().Read(reqPtr, reqLen)
	if !ok {
		stack[0] = api.EncodeI32(abi.HostErrFailed)
		return
	}
	st := stateOf(ctx)
	var resp []byte
	if st != nil && st.pendingResp != nil && bytes.Equal(st.pendingReq, req) {
		resp = st.pendingResp
		st.pendingReq, st.pendingResp = nil, nil
	} else {
		var err error
		if resp, err = p.runRedis(ctx, req); err != nil {
			p.log.Warn("plugin redis request refused", "err", err)
			stack[0] = api.EncodeI32(abi.HostErrFailed)
			return
		}
	}
	if uint64(len(resp)) > uint64(outCap) && st != nil {
		st.pendingReq, st.pendingResp = bytes.Clone(req), resp
	}
	stack[0] = api.EncodeI32(writeOut(m, resp, outPtr, outCap))
}
