package hatest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// failover plays one stream through the front on three pods sharing Redis,
// applies act to the pod producing it when segment 2 arrives, and checks
// what issue 4 promises: every segment arrives, decodes and joins the
// previous one, and the survivors took the job over exactly once. dead says
// the owner cannot answer after act (SIGKILL); a draining pod (SIGTERM) may
// still serve files that exist.
func failover(t *testing.T, dead bool, act func(t *testing.T, owner *Pod)) (*Cluster, *PlayResult, *Pod) {
	t.Helper()
	if testing.Short() {
		t.Skip("three wasmhls processes and a real-time playback")
	}
	if _, err := Binary(); err != nil {
		t.Skipf("cmd/wasmhls does not build yet:\n%v", err)
	}
	// The owner runs 2 segments ahead of the client, so most of the stream
	// is produced after the failure.
	c := Start(t, Options{Pods: 3, Redis: true, Media: testmedia.Options{Seconds: 20},
		Env: map[string]string{"WASMHLS_TRANSCODE_AHEAD_SEGMENTS": "2"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	items, err := c.Items(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var owner *Pod
	res, err := c.Play(ctx, PlayOptions{Item: items[0].ID, Decode: true, OnSegment: func(s SegmentRecord) {
		if s.N != 2 || owner != nil {
			return
		}
		o, err := c.WaitOwner(ctx, 15*time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		owner = o
		act(t, o)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Report())
	if owner == nil {
		t.Fatal("no owner was found to act on")
	}
	if want := int(math.Ceil(items[0].DurationS / 2)); len(res.Segments) != want {
		t.Fatalf("%d segments, want %d", len(res.Segments), want)
	}
	for _, s := range res.Segments {
		if s.DecodeErr != "" || s.Frames == 0 {
			t.Errorf("segment %d from %s: %d frames, decode errors %q", s.N, s.Pod, s.Frames, s.DecodeErr)
		}
		if dead && s.N > 2 && s.Pod == owner.Name {
			t.Errorf("segment %d served by %s after it was stopped", s.N, owner.Name)
		}
	}
	if len(res.Gaps) != 0 {
		t.Errorf("segments do not join: %+v", res.Gaps)
	}
	var takeovers float64
	for _, p := range c.Pods {
		if p == owner || !p.Running() {
			continue
		}
		n, err := p.Metric(ctx, "wasmhls_takeovers_total", nil)
		if err != nil {
			t.Fatal(err)
		}
		takeovers += n
	}
	if takeovers != 1 {
		t.Errorf("takeovers on the surviving pods: %v, want 1", takeovers)
	}
	return c, res, owner
}

func TestFailoverOwnerKilled(t *testing.T) {
	failover(t, true, func(t *testing.T, owner *Pod) {
		if err := owner.Kill(); err != nil {
			t.Error(err)
		}
	})
}

func TestFailoverOwnerTerminated(t *testing.T) {
	_, _, owner := failover(t, false, func(t *testing.T, owner *Pod) {
		if err := owner.Term(); err != nil {
			t.Error(err)
		}
	})
	if err := owner.WaitExit(30 * time.Second); err != nil {
		t.Errorf("%s after SIGTERM: %v", owner.Name, err)
	}
}
