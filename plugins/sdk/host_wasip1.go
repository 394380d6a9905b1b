//go:build wasip1

package sdk

import (
	"errors"
	"fmt"
	"unsafe"
)

// Host functions of module "wasmhls". The linker keeps only those a plugin
// reaches, so a plugin that never logs does not even import log; redis lives
// in package sdk/redis for the same reason (an ungranted import is refused
// at load).

//go:wasmimport wasmhls log
func wasmLog(level int32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport wasmhls now_ms
func wasmNowMs() int64

//go:wasmimport wasmhls config
func wasmConfig(out unsafe.Pointer, outCap uint32) int32

func hostLog(level int32, msg string) {
	if msg == "" {
		return
	}
	wasmLog(level, unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}

func hostNowMs() int64 { return wasmNowMs() }

func hostConfig() ([]byte, error) {
	buf := make([]byte, 4096)
	for range 4 {
		n := wasmConfig(unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
		switch {
		case n < 0:
			return nil, fmt.Errorf("config capability failed (host code %d)", n)
		case int(n) <= len(buf):
			return buf[:n], nil
		}
		// The host wrote nothing and told us the size it needs.
		buf = make([]byte, n)
	}
	return nil, errors.New("config capability: size kept growing between calls")
}
