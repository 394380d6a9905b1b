package sdk

import (
	"strconv"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/plugins/sdk/wire"
)

// Hand-written JSON for the store and takeover operations, the ones a
// server runs on every request or segment. encoding/json walks a request
// twice (validity scan, then decode) through reflection; inside wasm with
// the host's call deadline every loop iteration leaves the compiled guest,
// so that was most of a call's time (docs/PLUGINS.md "Performance").
// Anything these functions do not expect falls back to encoding/json, so
// the results and errors stay the standard ones.

// fastDecode fills v (a pointer to a zero request) from req; false means
// "use encoding/json" and v must be zeroed again by the caller.
func fastDecode(req []byte, v any) bool {
	if len(req) == 0 {
		return false
	}
	r := wire.NewReader(req)
	switch t := v.(type) {
	case *abi.GetRequest:
		r.Object(func(k []byte) {
			switch string(k) {
			case "id":
				t.ID = r.String()
			default:
				r.Fail()
			}
		})
	case *abi.RenewRequest:
		r.Object(func(k []byte) {
			switch string(k) {
			case "id":
				t.ID = r.String()
			case "owner":
				t.Owner = r.String()
			case "epoch":
				t.Epoch = r.Int()
			case "lease_ms":
				t.LeaseMs = r.Int()
			case "progress":
				r.Object(func(k []byte) {
					switch string(k) {
					case "last_completed_segment":
						t.Progress.LastCompletedSegment = int(r.Int())
					case "last_requested_segment":
						t.Progress.LastRequestedSegment = int(r.Int())
					case "last_durable_offset_ms":
						t.Progress.LastDurableOffsetMs = r.Int()
					default:
						r.Fail()
					}
				})
			default:
				r.Fail()
			}
		})
	case *abi.CommitSegmentRequest:
		r.Object(func(k []byte) {
			switch string(k) {
			case "id":
				t.ID = r.String()
			case "owner":
				t.Owner = r.String()
			case "epoch":
				t.Epoch = r.Int()
			case "segment":
				t.Segment = int(r.Int())
			case "offset_ms":
				t.OffsetMs = r.Int()
			default:
				r.Fail()
			}
		})
	case *abi.ReleaseRequest: // also DeleteRequest
		r.Object(func(k []byte) {
			switch string(k) {
			case "id":
				t.ID = r.String()
			case "owner":
				t.Owner = r.String()
			case "epoch":
				t.Epoch = r.Int()
			default:
				r.Fail()
			}
		})
	case *abi.TakeoverRequest:
		r.Object(func(k []byte) {
			switch string(k) {
			case "id":
				t.ID = r.String()
			case "owner":
				t.Owner = r.String()
			case "owner_url":
				t.OwnerURL = r.String()
			case "lease_ms":
				t.LeaseMs = r.Int()
			default:
				r.Fail()
			}
		})
	case *abi.TryLockRequest:
		r.Object(func(k []byte) {
			switch string(k) {
			case "name":
				t.Name = r.String()
			case "owner":
				t.Owner = r.String()
			case "ttl_ms":
				t.TTLMs = r.Int()
			default:
				r.Fail()
			}
		})
	case *abi.CreateRequest:
		r.Object(func(k []byte) {
			switch string(k) {
			case "record":
				wire.ReadRecord(r, &t.Record)
			case "lease_ms":
				t.LeaseMs = r.Int()
			default:
				r.Fail()
			}
		})
	case *abi.DecideRequest:
		r.Object(func(k []byte) {
			switch string(k) {
			case "record":
				wire.ReadRecord(r, &t.Record)
			case "now_ms":
				t.NowMs = r.Int()
			case "pod":
				t.Pod = r.String()
			case "pod_jobs":
				t.PodJobs = int(r.Int())
			case "requested_segment":
				t.RequestedSegment = int(r.Int())
			default:
				r.Fail()
			}
		})
	default:
		return false
	}
	return r.End()
}

// fastEncode writes the JSON of the common responses; false means "use
// encoding/json".
func fastEncode(resp any) ([]byte, bool) {
	switch t := resp.(type) {
	case empty:
		return []byte("{}"), true
	case abi.RenewResponse:
		b := append(make([]byte, 0, 40), `{"lease_expires_ms":`...)
		return append(strconv.AppendInt(b, t.LeaseExpiresMs, 10), '}'), true
	case abi.TryLockResponse:
		return append(strconv.AppendBool([]byte(`{"acquired":`), t.Acquired), '}'), true
	case abi.GetResponse:
		return appendRecordResult(nil, "", t.Record), true
	case abi.TakeoverResponse:
		return appendRecordResult(nil, "", t.Record), true
	case abi.CreateResponse:
		return appendRecordResult(strconv.AppendBool([]byte(`{"created":`), t.Created), ",", t.Record), true
	case abi.DecideResponse:
		b := wire.AppendString(append(make([]byte, 0, 64), `{"decision":`...), t.Decision)
		if t.RetryAfterMs != 0 {
			b = strconv.AppendInt(append(b, `,"retry_after_ms":`...), t.RetryAfterMs, 10)
		}
		if t.Reason != "" {
			b = wire.AppendString(append(b, `,"reason":`...), t.Reason)
		}
		return append(b, '}'), true
	}
	return nil, false
}

// appendRecordResult appends [sep]"record":{...}} to b, or starts the
// object when b is nil.
func appendRecordResult(b []byte, sep string, rec abi.JobRecord) []byte {
	if b == nil {
		b = make([]byte, 0, 512)
		b = append(b, '{')
	} else {
		b = append(b, sep...)
	}
	b = append(b, `"record":`...)
	return append(wire.AppendRecord(b, rec), '}')
}
