package main

import (
	"slices"
	"testing"

	"github.com/wasmhls/wasmhls/abi"
)

const (
	now  = int64(1_700_000_000_000)
	hour = int64(3_600_000)
)

func d(path string, age, bytes int64, live bool, refs ...string) abi.CleanupDir {
	return abi.CleanupDir{Path: path, Bytes: bytes, ModTimeMs: now - age, AccessMs: now - age, Referenced: refs, LiveLease: live}
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name string
		req  abi.PlanRequest
		want []string
	}{
		{"old unreferenced goes, live stays", abi.PlanRequest{NowMs: now, MaxAgeMs: 24 * hour, TotalBytes: 300, Dirs: []abi.CleanupDir{
			d("a/old", 48*hour, 100, false), d("a/live-old", 48*hour, 100, true, "j1"), d("a/new", hour, 100, false)}},
			[]string{"a/old"}},
		{"old dir of a dead job goes", abi.PlanRequest{NowMs: now, MaxAgeMs: 24 * hour, TotalBytes: 100, Dirs: []abi.CleanupDir{
			d("a/dead", 25*hour, 100, false, "j2")}},
			[]string{"a/dead"}},
		{"recent access keeps an old mtime", abi.PlanRequest{NowMs: now, MaxAgeMs: 24 * hour, TotalBytes: 100, Dirs: []abi.CleanupDir{
			{Path: "a/read", Bytes: 100, ModTimeMs: now - 48*hour, AccessMs: now - hour}}},
			[]string{}},
		{"high water: LRU unreferenced first, then dead-job dirs, never live", abi.PlanRequest{NowMs: now, MaxAgeMs: 24 * hour, HighWaterBytes: 250, TotalBytes: 500, Dirs: []abi.CleanupDir{
			d("h/live", 20*hour, 100, true, "j1"),
			d("h/dead-ref-oldest", 10*hour, 100, false, "j2"),
			d("h/unref-newer", 2*hour, 100, false),
			d("h/unref-older", 3*hour, 100, false),
			d("h/unref-newest", hour, 100, false)}},
			[]string{"h/unref-older", "h/unref-newer", "h/unref-newest"}},
		{"high water stops once under", abi.PlanRequest{NowMs: now, HighWaterBytes: 450, TotalBytes: 500, Dirs: []abi.CleanupDir{
			d("s/1", 3*hour, 100, false), d("s/2", 2*hour, 100, false)}},
			[]string{"s/1"}},
		{"aged deletions count against high water", abi.PlanRequest{NowMs: now, MaxAgeMs: 24 * hour, HighWaterBytes: 450, TotalBytes: 500, Dirs: []abi.CleanupDir{
			d("c/aged", 30*hour, 100, false), d("c/recent", hour, 100, false)}},
			[]string{"c/aged"}},
		{"live dirs alone over the mark: nothing", abi.PlanRequest{NowMs: now, MaxAgeMs: hour, HighWaterBytes: 1, TotalBytes: 200, Dirs: []abi.CleanupDir{
			d("l/1", 30*hour, 100, true, "j"), d("l/2", 30*hour, 100, true, "k")}},
			[]string{}},
		{"unsafe paths are never proposed", abi.PlanRequest{NowMs: now, MaxAgeMs: hour, TotalBytes: 400, Dirs: []abi.CleanupDir{
			d("/etc", 30*hour, 100, false), d("../up", 30*hour, 100, false), d("a/../../b", 30*hour, 100, false), d("", 30*hour, 100, false)}},
			[]string{}},
		{"max_age 0 disables age rule", abi.PlanRequest{NowMs: now, TotalBytes: 100, Dirs: []abi.CleanupDir{d("z/1", 300*hour, 100, false)}},
			[]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := plan(c.req)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if !slices.Equal(got.Delete, c.want) {
				t.Fatalf("delete %q, want %q (%s)", got.Delete, c.want, got.Reason)
			}
		})
	}
}

func TestPlanRefusesBadInput(t *testing.T) {
	for _, req := range []abi.PlanRequest{{}, {NowMs: now, MaxAgeMs: -1}, {NowMs: now, HighWaterBytes: -5}} {
		if _, err := plan(req); err == nil {
			t.Errorf("plan(%+v) answered", req)
		}
	}
}
