package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
)

func TestProgressJSONMatchesEncodingJSON(t *testing.T) {
	for _, p := range []abi.Progress{{}, {LastCompletedSegment: -1, LastRequestedSegment: 17, LastDurableOffsetMs: 1733300000123}} {
		want, _ := json.Marshal(p)
		if got := progressJSON(p); got != string(want) {
			t.Errorf("progressJSON(%+v) = %s, want %s", p, got, want)
		}
	}
}

// Both decoders give the same reply, and the hand-written one takes the
// replies the scripts send.
func TestDecodeReply(t *testing.T) {
	withRecord := `["ok",1733300000500,"",0,0,1,"job-1","a \"film\" <x>","720p","h","pod-a","http://10.0.0.1:8080",` +
		`3,1733300030000,"active","m/index.m3u8","s",-1,0,4,1733300000000]`
	cases := []struct {
		raw  string
		want scriptReply
	}{
		{withRecord, scriptReply{Status: "ok", NowMs: 1733300000500, Record: &abi.JobRecord{ID: "job-1", Item: `a "film" <x>`,
			Variant: "720p", ParamsHash: "h", Owner: "pod-a", OwnerURL: "http://10.0.0.1:8080", Epoch: 3,
			LeaseExpiresMs: 1733300030000, State: "active", ManifestPath: "m/index.m3u8", SegmentPrefix: "s",
			LastCompletedSegment: -1, LastRequestedSegment: 4, UpdatedMs: 1733300000000, NowMs: 1733300000500}}},
		{`["lost",5,"epoch is 4",0,0,0]`, scriptReply{Status: "lost", NowMs: 5, Error: "epoch is 4"}},
		{`["ok",5,"",1733300030000,0,0]`, scriptReply{Status: "ok", NowMs: 5, LeaseExpiresMs: 1733300030000}},
		{`["ok",5,"",0,1,0]`, scriptReply{Status: "ok", NowMs: 5, Acquired: true}},
	}
	for _, tc := range cases {
		fast, ok := fastReply([]byte(tc.raw))
		if !ok {
			t.Errorf("fast path refused %s", tc.raw)
		}
		slow, err := slowReply(json.RawMessage(tc.raw))
		if err != nil {
			t.Fatalf("slowReply(%s): %v", tc.raw, err)
		}
		for name, got := range map[string]scriptReply{"fast": fast, "slow": slow} {
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s decode of %s = %+v (record %+v), want %+v", name, tc.raw, got, got.Record, tc.want)
			}
		}
	}
}

func TestDecodeReplyErrorsNameTheProblem(t *testing.T) {
	for raw, want := range map[string]string{
		`{"status":"ok"}`:           "not an array",
		`["ok",5,"",0,0]`:           "5 elements, want 6",
		`["ok",5,"",0,0,1,"id"]`:    "7 elements, want 21",
		`["ok","five","",0,0,0]`:    "now_ms",
		`["ok",5,7,0,0,0]`:          "error",
		`["ok",5,"",0,0,0,"extra"]`: "unexpected element 6",
		`["ok",5,"",null,0,0]`:      "lease_expires_ms",
		`["ok",5,"",1.5,0,0]`:       "lease_expires_ms",
	} {
		if _, ok := fastReply([]byte(raw)); ok {
			t.Errorf("fast path accepted %s", raw)
		}
		_, err := decodeReply(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeReply(%s) = %v, want an error containing %q", raw, err, want)
		}
	}
}
