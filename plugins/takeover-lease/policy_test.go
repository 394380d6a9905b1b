package main

import (
	"testing"

	"github.com/wasmhls/wasmhls/abi"
)

const now = int64(1_700_000_000_000)

func rec(owner, url string, expires int64, state string) abi.JobRecord {
	return abi.JobRecord{ID: "j", Owner: owner, OwnerURL: url, Epoch: 2, LeaseExpiresMs: expires, State: state}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name  string
		cfg   config
		req   abi.DecideRequest
		want  string
		retry int64 // checked when > 0
	}{
		{"valid lease proxies", defaultConfig(),
			abi.DecideRequest{Record: rec("a", "http://a", now+5000, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideProxy, 0},
		{"expires exactly now is expired", defaultConfig(),
			abi.DecideRequest{Record: rec("a", "http://a", now, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideTakeover, 0},
		{"expired takes over", defaultConfig(),
			abi.DecideRequest{Record: rec("a", "http://a", now-1, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideTakeover, 0},
		{"released takes over before expiry", defaultConfig(),
			abi.DecideRequest{Record: rec("a", "http://a", now+30000, abi.StateReleased), NowMs: now, Pod: "b"}, abi.DecideTakeover, 0},
		{"grace keeps proxying", config{GraceMs: 2000, WaitMs: 1000},
			abi.DecideRequest{Record: rec("a", "http://a", now-1000, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideProxy, 0},
		{"after grace takes over", config{GraceMs: 2000, WaitMs: 1000},
			abi.DecideRequest{Record: rec("a", "http://a", now-2000, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideTakeover, 0},
		{"released ignores grace", config{GraceMs: 2000, WaitMs: 1000},
			abi.DecideRequest{Record: rec("a", "http://a", now, abi.StateReleased), NowMs: now, Pod: "b"}, abi.DecideTakeover, 0},
		{"at cap waits", config{MaxJobsPerPod: 2, WaitMs: 700},
			abi.DecideRequest{Record: rec("a", "http://a", now-1, abi.StateActive), NowMs: now, Pod: "b", PodJobs: 2}, abi.DecideWait, 700},
		{"under cap takes over", config{MaxJobsPerPod: 2, WaitMs: 700},
			abi.DecideRequest{Record: rec("a", "http://a", now-1, abi.StateActive), NowMs: now, Pod: "b", PodJobs: 1}, abi.DecideTakeover, 0},
		{"at cap still proxies a live owner", config{MaxJobsPerPod: 1, WaitMs: 700},
			abi.DecideRequest{Record: rec("a", "http://a", now+1, abi.StateActive), NowMs: now, Pod: "b", PodJobs: 5}, abi.DecideProxy, 0},
		{"valid lease without url waits until expiry", defaultConfig(),
			abi.DecideRequest{Record: rec("a", "", now+300, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideWait, 300},
		{"own valid lease waits, never takes over", defaultConfig(),
			abi.DecideRequest{Record: rec("b", "http://b", now+5000, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideWait, 1000},
		{"store time from the record", defaultConfig(),
			abi.DecideRequest{Record: func() abi.JobRecord { r := rec("a", "http://a", now-1, abi.StateActive); r.NowMs = now; return r }(), Pod: "b"}, abi.DecideTakeover, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decide(c.cfg, c.req)
			if err != nil {
				t.Fatalf("decide: %v", err)
			}
			if got.Decision != c.want {
				t.Fatalf("decision %q (%s), want %q", got.Decision, got.Reason, c.want)
			}
			if c.retry > 0 && got.RetryAfterMs != c.retry {
				t.Fatalf("retry_after_ms %d, want %d", got.RetryAfterMs, c.retry)
			}
			if got.Reason == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

func TestDecideRefusesWithoutStoreTime(t *testing.T) {
	_, err := decide(defaultConfig(), abi.DecideRequest{Record: rec("a", "http://a", 0, abi.StateActive), Pod: "b"})
	if err == nil {
		t.Fatal("decide without now_ms answered instead of failing")
	}
	if _, err := decide(defaultConfig(), abi.DecideRequest{NowMs: now}); err == nil {
		t.Fatal("decide without a record id answered")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []config{{GraceMs: -1, WaitMs: 1}, {MaxJobsPerPod: -1, WaitMs: 1}, {WaitMs: 0}} {
		if c.validate() == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
