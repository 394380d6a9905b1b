//go:build !wasip1

package redis

import "errors"

func hostRedis([]byte) ([]byte, int32, error) {
	return nil, 0, errors.New("redis: capability only available inside a wasmhls plugin (GOOS=wasip1)")
}
