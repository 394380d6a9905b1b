// Package redis is the guest side of the "redis" capability: a plugin sends
// a command or a Lua script through the host's go-redis client (plugins
// never open sockets). The capability must be granted to the plugin's slot
// and listed in its Description; importing this package is what makes the
// module import the host function, so a plugin that does not use Redis does
// not need the grant.
//
// Scripts are sent as text; the host runs them with EVALSHA and loads them
// on NOSCRIPT, caching the SHA per script text, so a script costs one
// round trip after its first use. Sending the text each time (a few KB copied
// inside the process) keeps the guest stateless across instance recycling
// and Redis restarts, which flush the server's script cache.
package redis

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wasmhls/wasmhls/abi"
)

// Reply is one Redis reply as JSON: strings, integers, arrays and nulls.
type Reply struct {
	value json.RawMessage
	nil_  bool
}

// IsNil reports a Redis nil reply (a missing key for GET, a Lua false).
func (r Reply) IsNil() bool { return r.nil_ }

// Decode unmarshals the reply's value into v.
func (r Reply) Decode(v any) error {
	if r.nil_ || len(r.value) == 0 {
		return errors.New("redis: nil reply")
	}
	if err := json.Unmarshal(r.value, v); err != nil {
		return fmt.Errorf("redis: decode reply %.80s: %w", r.value, err)
	}
	return nil
}

// String returns a string (bulk or status) reply.
func (r Reply) String() (string, error) {
	var s string
	err := r.Decode(&s)
	return s, err
}

// Int returns an integer reply.
func (r Reply) Int() (int64, error) {
	var n int64
	err := r.Decode(&n)
	return n, err
}

// Raw returns the reply's JSON.
func (r Reply) Raw() json.RawMessage { return r.value }

// Do runs one command, e.g. Do("SET", key, value, "PX", 1000).
func Do(args ...any) (Reply, error) {
	if len(args) == 0 {
		return Reply{}, errors.New("redis: Do without a command")
	}
	return roundTrip(abi.RedisRequest{Args: args})
}

// Eval runs a Lua script with keys (KEYS) and args (ARGV). All keys must
// hash to one Redis Cluster slot (use a {hash tag}).
func Eval(script string, keys []string, args ...any) (Reply, error) {
	if script == "" {
		return Reply{}, errors.New("redis: Eval with an empty script")
	}
	if keys == nil {
		keys = []string{}
	}
	if args == nil {
		args = []any{}
	}
	return roundTrip(abi.RedisRequest{Script: script, Keys: keys, Args: args})
}

// wireResponse is abi.RedisResponse with the value kept as JSON.
type wireResponse struct {
	Value json.RawMessage `json:"value,omitempty"`
	Nil   bool            `json:"nil,omitempty"`
	Error string          `json:"error,omitempty"`
}

func roundTrip(req abi.RedisRequest) (Reply, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return Reply{}, fmt.Errorf("redis: encode request: %w", err)
	}
	out, code, err := hostRedis(in)
	if err != nil {
		return Reply{}, err
	}
	var resp wireResponse
	if len(out) > 0 {
		if err := json.Unmarshal(out, &resp); err != nil {
			return Reply{}, fmt.Errorf("redis: decode host response: %w", err)
		}
	}
	if resp.Error != "" {
		return Reply{}, fmt.Errorf("redis: %s", resp.Error)
	}
	switch code {
	case abi.HostErrTooLarge:
		return Reply{}, fmt.Errorf("redis: request of %d bytes is larger than the host accepts", len(in))
	case abi.HostErrFailed:
		return Reply{}, errors.New("redis: the host reported a failure without a message")
	}
	return Reply{value: resp.Value, nil_: resp.Nil || string(resp.Value) == "null"}, nil
}
