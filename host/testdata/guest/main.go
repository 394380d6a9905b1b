// Command guest is the host package's test plugin: a minimal ABI v1
// implementation written without plugins/sdk (so host tests do not depend on
// it) plus hostile operations the sandbox must contain. Variants are chosen
// at build time: -ldflags "-X main.abiVersion=2 -X main.kind=takeover" and
// -tags redis (adds the redis host import).
package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"unsafe"
)

var (
	abiVersion = "1"
	kind       = "store"
	name       = "test-guest"
	version    = "0.0.1"
)

// pinned keeps every buffer handed to the host alive until it is freed.
var pinned = map[uint32][]byte{}

func main() {}

//go:wasmexport wasmhls_abi_version
func abiVersionExport() int32 {
	v, _ := strconv.Atoi(abiVersion)
	return int32(v)
}

//go:wasmexport wasmhls_malloc
func malloc(size int32) uint32 {
	if size < 1 {
		size = 1
	}
	b := make([]byte, size)
	p := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	pinned[p] = b
	return p
}

//go:wasmexport wasmhls_free
func free(p uint32) { delete(pinned, p) }

//go:wasmexport wasmhls_describe
func describe() uint64 {
	caps := []string{"log", "clock", "config"}
	if redisEnabled {
		caps = append(caps, "redis")
	}
	b, _ := json.Marshal(map[string]any{"name": name, "kind": kind, "version": version,
		"abi": abiVersionExport(), "capabilities": caps})
	return out(b)
}

func out(b []byte) uint64 {
	p := malloc(int32(len(b)))
	copy(pinned[p], b)
	return uint64(p)<<32 | uint64(len(b))
}

func bytesAt(p, n uint32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
}

type envelope struct {
	Status string          `json:"status"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

func reply(status, msg string, result any) uint64 {
	e := envelope{Status: status, Error: msg}
	if result != nil {
		e.Result, _ = json.Marshal(result)
	}
	b, _ := json.Marshal(e)
	return out(b)
}

var (
	sink   [][]byte
	served int
)

// noopReply is answered by op "noop" without allocating or decoding: the
// floor of a call (host side, guest entry and exit) for the benchmarks.
var noopReply = []byte(`{"status":"ok"}`)

var spinSink uint32

//go:wasmexport wasmhls_call
func call(opPtr, opLen, reqPtr, reqLen uint32) uint64 {
	if string(bytesAt(opPtr, opLen)) == "spin1000" {
		// 1000 loop iterations and nothing else: the per-iteration cost of
		// the call deadline is (deadline - no deadline) / 1000.
		for i := 0; i < 1000; i++ {
			spinSink += uint32(i) ^ reqLen
		}
		return uint64(uintptr(unsafe.Pointer(&noopReply[0])))<<32 | uint64(len(noopReply))
	}
	if string(bytesAt(opPtr, opLen)) == "noop" {
		// free of this pointer is a harmless delete of a missing key.
		return uint64(uintptr(unsafe.Pointer(&noopReply[0])))<<32 | uint64(len(noopReply))
	}
	op := string(bytesAt(opPtr, opLen))
	req := append([]byte(nil), bytesAt(reqPtr, reqLen)...)
	switch op {
	case "self_test":
		return reply("ok", "", nil)
	case "echo": // returns the request as the result
		return reply("ok", "", json.RawMessage(req))
	case "status": // {"status":..,"error":..,"result":..} echoed as the envelope
		var e envelope
		_ = json.Unmarshal(req, &e)
		b, _ := json.Marshal(e)
		return out(b)
	case "get": // store get: a fixed record, so clients can be tested
		var r struct{ ID string }
		_ = json.Unmarshal(req, &r)
		if r.ID == "missing" {
			return reply("not_found", "", nil)
		}
		return reply("ok", "", map[string]any{"record": map[string]any{"id": r.ID, "epoch": 7, "owner": "pod-a"}})
	case "takeover":
		return reply("conflict", "", map[string]any{"record": map[string]any{"id": "j", "epoch": 3, "owner": "pod-a"}})
	case "renew":
		return reply("lost", "", nil)
	case "count": // calls this instance has served: shows recycling
		served++
		return reply("ok", "", map[string]int{"served": served})
	case "info":
		return reply("ok", "", map[string]any{"name": name, "version": version})
	case "config":
		return reply("ok", "", json.RawMessage(hostConfig()))
	case "clock":
		return reply("ok", "", map[string]any{"now_ms": hostNowMs()})
	case "log":
		hostLog(4, string(req))
		return reply("ok", "", nil)
	case "redis":
		return redisOp(req)
	// ---- hostile ----
	case "loop":
		n := 0
		for {
			n++
		}
	case "bomb":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "panic":
		var m map[string]int
		m["x"] = 1 // nil map write: a Go panic, the module exits
		return 0
	case "open_file":
		f, err := os.Open("/etc/hostname")
		if err != nil {
			return reply("error", "open /etc/hostname: "+err.Error(), nil)
		}
		b, _ := f.Read(make([]byte, 64))
		return reply("ok", "", map[string]any{"read": b})
	case "env":
		return reply("ok", "", map[string]any{"environ": os.Environ(), "home": os.Getenv("HOME")})
	case "garbage":
		return out([]byte("{not json"))
	case "huge":
		return reply("ok", "", map[string]string{"pad": strings.Repeat("a", 2<<20)})
	case "bad_ptr":
		return uint64(0xFFFFFF00)<<32 | 4096
	}
	return reply("bad_op", "unknown operation "+op, nil)
}

//go:wasmimport wasmhls log
func logImport(level int32, p, n uint32)

//go:wasmimport wasmhls now_ms
func nowMsImport() int64

//go:wasmimport wasmhls config
func configImport(p, n uint32) int32

func hostLog(level int32, msg string) {
	b := []byte(msg)
	if len(b) == 0 {
		return
	}
	logImport(level, uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b)))
}

func hostNowMs() int64 { return nowMsImport() }

func hostConfig() []byte {
	buf := make([]byte, 16)
	for {
		n := configImport(uint32(uintptr(unsafe.Pointer(&buf[0]))), uint32(len(buf)))
		if n < 0 {
			return []byte("null")
		}
		if int(n) <= len(buf) {
			return buf[:n]
		}
		buf = make([]byte, n)
	}
}
