package sdk

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
)

// rec uses strings with every kind of character the hand-written JSON
// treats specially, and negative and large numbers.
func rec() abi.JobRecord {
	return abi.JobRecord{ID: "job-1\"x\\y\n", Item: "film <é> & 日本", Variant: "720p", ParamsHash: "abcdef0123456789",
		Owner: "pod-a", OwnerURL: "http://10.0.0.1:8080/?a=b&c=d", Epoch: 7, LeaseExpiresMs: 1733300000123,
		State: abi.StateActive, ManifestPath: "a/b/index.m3u8", SegmentPrefix: "seg\t", LastCompletedSegment: -1,
		LastDurableOffsetMs: 0, LastRequestedSegment: 12, UpdatedMs: 1733300000000, NowMs: 1733300000456}
}

func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	for _, v := range []any{
		&abi.GetRequest{ID: "j 1<&>"},
		&abi.RenewRequest{ID: "j", Owner: "o", Epoch: 3, LeaseMs: 30000,
			Progress: abi.Progress{LastCompletedSegment: -1, LastRequestedSegment: 5, LastDurableOffsetMs: 12000}},
		&abi.CommitSegmentRequest{ID: "j", Owner: "o", Epoch: -2, Segment: 9, OffsetMs: 54000},
		&abi.ReleaseRequest{ID: "j", Owner: "o", Epoch: 1},
		&abi.TakeoverRequest{ID: "j", Owner: "o", OwnerURL: "http://x", LeaseMs: 1},
		&abi.TryLockRequest{Name: "cleanup", Owner: "o", TTLMs: 60000},
		&abi.CreateRequest{Record: rec(), LeaseMs: 30000},
		&abi.DecideRequest{Record: rec(), NowMs: 5, Pod: "p", PodJobs: 2, RequestedSegment: 3},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if !fastDecode(b, got) {
			t.Errorf("%T: fast path refused %s", v, b)
			continue
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%T: fast decode of %s = %+v, want %+v", v, b, got, v)
		}
	}
}

// TestFastDecodeFallsBack: input the fast path does not handle is left to
// encoding/json, and the kit's answer is then encoding/json's.
func TestFastDecodeFallsBack(t *testing.T) {
	for _, in := range []string{
		`{"ID":"x"}`, `{"id":null}`, `{"id":"x","extra":1}`, `{"id":"\u00e9"}`, `{"id":"x"} x`, `{"id":`,
		`{"id":"x","epoch":1.5}`, `{"id":"x","epoch":1e3}`, `{"id":"x","epoch":12345678901234567890}`, `[]`,
	} {
		var r abi.ReleaseRequest
		if fastDecode([]byte(in), &r) {
			t.Errorf("fast path accepted %s as %+v", in, r)
		}
	}
	// Through the dispatcher: same outcome as encoding/json.
	var want abi.GetRequest
	_ = json.Unmarshal([]byte(`{"ID":"x","other":true}`), &want)
	got, err := call(abi.OpGet, []byte(`{"ID":"x","other":true}`), func(r abi.GetRequest) (abi.GetRequest, error) { return r, nil })
	if err != nil || got != want {
		t.Fatalf("fallback decode = %+v, %v; want %+v", got, err, want)
	}
	if _, err := call(abi.OpGet, []byte(`{"id":`), func(r abi.GetRequest) (abi.GetRequest, error) { return r, nil }); err == nil {
		t.Fatal("truncated request decoded without error")
	}
}

func TestFastEncodeMatchesEncodingJSON(t *testing.T) {
	r := rec()
	r2 := r
	r2.NowMs = 0
	for _, v := range []any{
		empty{}, abi.RenewResponse{LeaseExpiresMs: 1733300000123}, abi.TryLockResponse{Acquired: true},
		abi.TryLockResponse{}, abi.GetResponse{Record: r}, abi.GetResponse{Record: r2}, abi.TakeoverResponse{Record: r},
		abi.CreateResponse{Created: true, Record: r}, abi.CreateResponse{Record: r2},
		abi.DecideResponse{Decision: abi.DecideWait, RetryAfterMs: 500, Reason: "lease \"valid\""},
		abi.DecideResponse{Decision: abi.DecideProxy},
	} {
		fast, ok := fastEncode(v)
		if !ok {
			t.Errorf("%T: no fast encoding", v)
			continue
		}
		std, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(fast, &a); err != nil {
			t.Fatalf("%T: fast encoding %s is not JSON: %v", v, fast, err)
		}
		_ = json.Unmarshal(std, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%T: fast encoding %s, encoding/json %s", v, fast, std)
		}
	}
	if _, ok := fastEncode(abi.PlanResponse{}); ok {
		t.Error("PlanResponse has a fast encoding; the test must cover it")
	}
}

func TestEnvelopeIsStandardJSON(t *testing.T) {
	for _, e := range []abi.Envelope{
		{Status: abi.StatusOK, Result: json.RawMessage(`{"a":1}`)},
		{Status: abi.StatusConflict, Error: "lease \"valid\"\n<until>", Result: json.RawMessage(`{}`)},
		{Status: "custom\\status"},
	} {
		var got abi.Envelope
		if err := json.Unmarshal(envelope(e), &got); err != nil {
			t.Fatalf("envelope(%+v) = %s: %v", e, envelope(e), err)
		}
		if got.Status != e.Status || got.Error != e.Error || string(got.Result) != string(e.Result) {
			t.Errorf("envelope(%+v) decodes to %+v", e, got)
		}
	}
}
