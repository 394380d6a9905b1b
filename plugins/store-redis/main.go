// Command store-redis is the built-in HA session store: every operation of
// DESIGN.md "The lease protocol" is one atomic Lua script (scripts.go) run
// through the host's redis capability, timed by Redis TIME.
//
// Config (plugins.store.config):
//
//	key_prefix:   key namespace (default "wasmhls"); a job is {key_prefix:id},
//	              the list index {key_prefix}:jobs, a lock {key_prefix:lock:name}
//	retention_ms: how long a record outlives its lease before Redis expires
//	              it (default 3600000)
//	list_batch:   index entries read per round trip by list (default 100)
package main

import (
	"encoding/json"
	"errors"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk"
	"github.com/wasmhls/wasmhls/plugins/sdk/redis"
)

const version = "1.0.0"

func init() {
	sdk.RegisterStore(abi.Description{
		Name:         "store-redis",
		Version:      version,
		Capabilities: []string{abi.CapLog, abi.CapConfig, abi.CapRedis},
	}, sdk.LazyStore(func() (sdk.Store, error) {
		cfg := defaultConfig()
		if err := sdk.StrictConfig(&cfg); err != nil {
			return nil, err
		}
		if err := cfg.validate(); err != nil {
			return nil, err
		}
		return &redisStore{cfg: cfg, c: capConn{}}, nil
	}))
}

func main() {}

// capConn is conn over the sdk's redis capability.
type capConn struct{}

func (capConn) eval(script string, keys []string, args ...any) (json.RawMessage, error) {
	r, err := redis.Eval(script, keys, args...)
	if err != nil {
		return nil, err
	}
	if r.IsNil() {
		return nil, errors.New("script answered nil")
	}
	return r.Raw(), nil
}

func (capConn) do(args ...any) (json.RawMessage, error) {
	r, err := redis.Do(args...)
	if err != nil || r.IsNil() {
		return nil, err
	}
	return r.Raw(), nil
}
