//go:build redis

package main

import "unsafe"

const redisEnabled = true

//go:wasmimport wasmhls redis
func redisImport(reqPtr, reqLen, outPtr, outCap uint32) int32

// redisOp forwards the request (an abi.RedisRequest) and returns the
// RedisResponse as the result, retrying with a bigger buffer when asked.
func redisOp(req []byte) uint64 {
	buf := make([]byte, 8)
	for {
		n := redisImport(uint32(uintptr(unsafe.Pointer(&req[0]))), uint32(len(req)),
			uint32(uintptr(unsafe.Pointer(&buf[0]))), uint32(len(buf)))
		if n < 0 {
			return reply("error", "redis host call failed", nil)
		}
		if int(n) <= len(buf) {
			return reply("ok", "", rawJSON(buf[:n]))
		}
		buf = make([]byte, n)
	}
}

type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }
