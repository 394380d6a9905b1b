// Package redis is the guest side of the "redis" capability: a plugin sends
// a command or a Lua script through the host's go-redis client (plugins
// never open sockets). The capability must be granted to the plugin's slot
// and listed in its Description; importing this package is what makes the
// module import the host function, so a plugin that does not use Redis does
// not need the grant.
//
// Eval sends EVALSHA as a plain command with the script's SHA1, computed
// once per script in the instance (scripts.go); only when Redis answers
// NOSCRIPT (first use, a Redis restart or failover flushed its script
// cache) is the script text sent, and the host loads it and runs it. The
// text is a few KB that every call used to encode as JSON in the guest:
// the biggest cost of a store-redis call (docs/PLUGINS.md "Performance").
package redis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk/wire"
)

// Reply is one Redis reply as JSON: strings, integers, arrays and nulls.
type Reply struct {
	value json.RawMessage
	nil_  bool
	// str is value already decoded when it is a JSON string (hasStr).
	str    string
	hasStr bool
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
	if r.hasStr && !r.nil_ {
		return r.str, nil
	}
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
	in, err := encodeArgs(nil, args)
	if err != nil {
		return Reply{}, err
	}
	return roundTrip(in)
}

// Eval runs a Lua script with keys (KEYS) and args (ARGV). All keys must
// hash to one Redis Cluster slot (use a {hash tag}).
func Eval(script string, keys []string, args ...any) (Reply, error) {
	if script == "" {
		return Reply{}, errors.New("redis: Eval with an empty script")
	}
	cmd := make([]any, 0, 3+len(keys)+len(args))
	cmd = append(cmd, "EVALSHA", scriptSHA(script), len(keys))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	cmd = append(cmd, args...)
	in, err := encodeArgs(nil, cmd)
	if err != nil {
		return Reply{}, err
	}
	r, err := roundTrip(in)
	if err == nil || !strings.HasPrefix(err.Error(), noScriptPrefix) {
		return r, err
	}
	// Redis does not know the script: send its text, which the host
	// loads (SCRIPT LOAD) and runs with EVALSHA; later calls find it.
	if keys == nil {
		keys = []string{}
	}
	if args == nil {
		args = []any{}
	}
	in, err = json.Marshal(abi.RedisRequest{Script: script, Keys: keys, Args: args})
	if err != nil {
		return Reply{}, fmt.Errorf("redis: encode request: %w", err)
	}
	return roundTrip(in)
}

// noScriptPrefix is how roundTrip reports Redis' NOSCRIPT error.
const noScriptPrefix = "redis: NOSCRIPT"

// encodeArgs writes {"args":[...]} by hand (see package wire for why).
func encodeArgs(b []byte, args []any) ([]byte, error) {
	b = append(b, `{"args":[`...)
	for i, a := range args {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = wire.AppendArg(b, a); err != nil {
			return nil, fmt.Errorf("redis: encode argument %d (%T): %w", i, a, err)
		}
	}
	return append(b, "]}"...), nil
}

// wireResponse is abi.RedisResponse with the value kept as JSON.
type wireResponse struct {
	Value  json.RawMessage `json:"value,omitempty"`
	Nil    bool            `json:"nil,omitempty"`
	Error  string          `json:"error,omitempty"`
	str    string          // Value decoded, when fastResponse saw a string
	hasStr bool
}

func roundTrip(in []byte) (Reply, error) {
	out, code, err := hostRedis(in)
	if err != nil {
		return Reply{}, err
	}
	var resp wireResponse
	if len(out) > 0 && !fastResponse(out, &resp) {
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
	return Reply{value: resp.Value, nil_: resp.Nil || string(resp.Value) == "null", str: resp.str, hasStr: resp.hasStr}, nil
}

// fastResponse decodes the host's common answers without encoding/json:
// {"nil":true}, {"value":"a string"} and {"value":[an array]} (a script's
// reply). A string is decoded once here and kept, so Reply.String does
// not decode it again. Anything else returns false and takes the general
// path.
func fastResponse(out []byte, resp *wireResponse) bool {
	switch {
	case string(out) == `{"nil":true}`:
		resp.Nil = true
		return true
	case len(out) > len(`{"value":""}`) && string(out[:len(`{"value":"`)]) == `{"value":"`:
		const at = len(`{"value":`)
		s, n, ok := wire.ParseString(out[at:])
		if !ok || at+n != len(out)-1 || out[len(out)-1] != '}' {
			return false
		}
		resp.Value = bytes.Clone(out[at : at+n]) // out is hostRedis' reused buffer
		resp.str, resp.hasStr = s, true
		return true
	case len(out) >= len(`{"value":[]}`) && string(out[:len(`{"value":[`)]) == `{"value":[` &&
		string(out[len(out)-2:]) == "]}":
		// An array is the last key: RedisResponse has no other array, so
		// nothing can follow it. Its elements are checked by whoever
		// decodes Raw() (store-redis' script replies are arrays).
		resp.Value = bytes.Clone(out[len(`{"value":`) : len(out)-1])
		return true
	}
	return false
}
