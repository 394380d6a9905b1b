//go:build wasip1

package redis

import (
	"errors"
	"unsafe"
)

//go:wasmimport wasmhls redis
func wasmRedis(req unsafe.Pointer, reqLen uint32, out unsafe.Pointer, outCap uint32) int32

// buf is reused between calls: an instance is single-threaded.
var buf = make([]byte, 16<<10)

// hostRedis sends req and returns the response JSON. When the response does
// not fit the host writes nothing and returns the size it needs; the retry
// with the same request is answered from the host's per-instance cache, so
// the command does not run twice.
func hostRedis(req []byte) ([]byte, int32, error) {
	for range 4 {
		n := wasmRedis(unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)),
			unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
		if n < 0 {
			// A failure without a body (a Redis error comes as a
			// RedisResponse with Error set and a positive length).
			return nil, n, nil
		}
		if int(n) <= len(buf) {
			return buf[:n], 0, nil
		}
		buf = make([]byte, n)
	}
	return nil, 0, errors.New("redis: response size kept growing between calls")
}
