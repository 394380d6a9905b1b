//go:build wasip1

package sdk

import (
	"encoding/json"
	"unsafe"

	"github.com/wasmhls/wasmhls/abi"
)

// allocs keeps every buffer handed to the host reachable until the host
// frees it: the Go GC does not know that the host holds a pointer into
// linear memory, and would otherwise reuse the memory under it.
var allocs = map[uintptr][]byte{}

// describeBuf is cached so that repeated describes cost nothing; freeing it
// only drops it from allocs, describeBuf itself keeps it alive.
var describeBuf []byte

//go:wasmexport wasmhls_abi_version
func exportABIVersion() int32 { return abi.Version }

//go:wasmexport wasmhls_describe
func exportDescribe() uint64 {
	if describeBuf == nil {
		var d abi.Description
		if registered != nil {
			d = registered.desc
		} else {
			// No registration: describe an empty kind so the host refuses
			// the module with a message instead of trapping.
			d = abi.Description{ABI: abi.Version, Capabilities: []string{}}
		}
		b, err := json.Marshal(d)
		if err != nil {
			b = []byte(`{}`)
		}
		describeBuf = b
	}
	return keep(describeBuf)
}

//go:wasmexport wasmhls_malloc
func exportMalloc(size uint32) unsafe.Pointer {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	p := unsafe.Pointer(unsafe.SliceData(b))
	allocs[uintptr(p)] = b
	return p
}

//go:wasmexport wasmhls_free
func exportFree(p unsafe.Pointer) {
	delete(allocs, uintptr(p))
}

//go:wasmexport wasmhls_call
func exportCall(opPtr unsafe.Pointer, opLen uint32, reqPtr unsafe.Pointer, reqLen uint32) uint64 {
	op := string(guestBytes(opPtr, opLen))
	// The request buffer belongs to the host until the call returns;
	// handle does not keep a reference to it after returning.
	out := handle(op, guestBytes(reqPtr, reqLen))
	return keep(out)
}

// keep registers b as allocated and packs its address and length.
func keep(b []byte) uint64 {
	if len(b) == 0 {
		b = []byte{0}[:0:1]
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	allocs[uintptr(p)] = b
	return uint64(uintptr(p))<<32 | uint64(uint32(len(b)))
}

func guestBytes(p unsafe.Pointer, n uint32) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}
