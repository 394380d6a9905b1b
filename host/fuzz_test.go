package host

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
)

// FuzzDecodeResponse feeds arbitrary guest responses to the host's
// decoder: it must never panic, and a nil error (a usable result) is only
// possible for a well-formed ok envelope.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"status":"ok","result":{"record":{"id":"a","epoch":1}}}`,
		`{"status":"ok"}`, `{"status":"ok","result":null}`,
		`{"status":"conflict","result":{"record":{"id":"a"}}}`,
		`{"status":"lost"}`, `{"status":"not_found"}`, `{"status":"error","error":"x"}`,
		`{"status":"bad_op"}`, `{"status":"OK"}`, `{"status":"ok","result":"string"}`,
		`{not json`, ``, `null`, `[]`, `{"status":1}`, `{"status":"ok","result":{"record":[]}}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, wantResult bool) {
		var resp *abi.GetResponse
		if wantResult {
			resp = &abi.GetResponse{}
		}
		var target any
		if resp != nil {
			target = resp
		}
		status, err := decodeResponse("fuzz.wasm", "get", raw, 1<<16, target)
		var env abi.Envelope
		envErr := json.Unmarshal(raw, &env)
		if err == nil {
			if len(raw) > 1<<16 || envErr != nil || env.Status != abi.StatusOK || status != abi.StatusOK {
				t.Fatalf("accepted %q (status %q)", raw, status)
			}
			if resp != nil && (len(env.Result) == 0 || string(env.Result) == "null") {
				t.Fatalf("result without a result field: %q", raw)
			}
			return
		}
		// Anything that is not a recognised envelope must be a plugin failure.
		known := envErr == nil && len(raw) <= 1<<16
		switch env.Status {
		case abi.StatusOK, abi.StatusConflict, abi.StatusLost, abi.StatusNotFound, abi.StatusError, abi.StatusBadOp:
		default:
			known = false
		}
		if !known && !errors.Is(err, ErrPluginFailed) {
			t.Fatalf("%q: error %v is not ErrPluginFailed", raw, err)
		}
	})
}
