package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/session"
)

// ErrPluginFailed marks a call whose outcome is unknown because the plugin
// misbehaved: a trap, a timeout, a response that is not a valid envelope or
// is too large. Callers must treat it as "nothing happened, nothing is
// allowed" — never as a takeover or a deletion.
var ErrPluginFailed = errors.New("plugin failed")

// failure is an ErrPluginFailed naming the plugin and the operation.
type failure struct {
	plugin, op string
	err        error
}

func (f *failure) Error() string {
	return fmt.Sprintf("plugin %s: %s: %v", f.plugin, f.op, f.err)
}

// Unwrap exposes both ErrPluginFailed and the cause (a wazero exit error,
// a context deadline, a JSON error).
func (f *failure) Unwrap() []error { return []error{ErrPluginFailed, f.err} }

func failed(plugin, op string, err error) error { return &failure{plugin: plugin, op: op, err: err} }

// decodeResponse turns the bytes a guest returned from wasmhls_call into
// the caller's result or an error. Only a well-formed envelope with status
// ok (or conflict, which carries the current record) ever fills resp; an
// ok envelope must carry a result when resp is non-nil, so a plugin that
// forgets it cannot produce a zero record that looks real.
func decodeResponse(plugin, op string, raw []byte, maxLen int, resp any) (status string, err error) {
	if len(raw) > maxLen {
		return "", failed(plugin, op, fmt.Errorf("response of %d bytes exceeds the %d-byte limit (max_message_kb)", len(raw), maxLen))
	}
	var env abi.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return "", failed(plugin, op, fmt.Errorf("response is not a JSON envelope: %w", err))
	}
	hasResult := len(env.Result) > 0 && !bytes.Equal(env.Result, []byte("null"))
	where := func(e error) error {
		if env.Error != "" {
			return fmt.Errorf("plugin %s: %s: %s: %w", plugin, op, env.Error, e)
		}
		return fmt.Errorf("plugin %s: %s: %w", plugin, op, e)
	}
	switch env.Status {
	case abi.StatusOK:
		if resp == nil {
			return env.Status, nil
		}
		if !hasResult {
			return "", failed(plugin, op, errors.New("status ok without a result"))
		}
		if err := json.Unmarshal(env.Result, resp); err != nil {
			return "", failed(plugin, op, fmt.Errorf("decode result: %w", err))
		}
		return env.Status, nil
	case abi.StatusConflict:
		if resp != nil && hasResult {
			if err := json.Unmarshal(env.Result, resp); err != nil {
				return "", failed(plugin, op, fmt.Errorf("decode conflict result: %w", err))
			}
		}
		return env.Status, where(session.ErrLeaseValid)
	case abi.StatusLost:
		return env.Status, where(session.ErrLost)
	case abi.StatusNotFound:
		return env.Status, where(session.ErrNotFound)
	case abi.StatusError, abi.StatusBadOp:
		msg := env.Error
		if msg == "" {
			msg = "no message"
		}
		return env.Status, fmt.Errorf("plugin %s: %s: %s: %s", plugin, op, env.Status, msg)
	default:
		return "", failed(plugin, op, fmt.Errorf("unknown envelope status %q", env.Status))
	}
}
