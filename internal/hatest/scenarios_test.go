package hatest

import (
	"context"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// The multi-pod scenarios of issue 4 (the HA helper's; the harness author's
// own failover tests are in scenarios_test.go): real redis-server, three
// `wasmhls serve` processes on builtin:store-redis (lease 3 s, renew 1 s,
// 2 s segments), 16 s of 320x180 media, a real-time player through the
// round-robin front. Every scenario that plays checks that every segment
// arrives, decodes and joins the previous one within one frame.

// scMediaSeconds: 8 segments of 2 s.
const scMediaSeconds = 16

func scWantSegments() int { return scMediaSeconds / 2 }

// scStart starts the cluster of the scenarios. ahead_segments 1 keeps the
// owner close to the player, so a failover is felt (not hidden by a buffer
// of finished segments); ultrafast keeps 2 cores free for three pods.
func scStart(t *testing.T) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-pod scenario: three wasmhls processes, redis, real-time playback")
	}
	if _, err := Binary(); err != nil {
		t.Skipf("cmd/wasmhls does not build, so there is no server to run:\n%v", err)
	}
	c := Start(t, Options{Redis: true, Media: testmedia.Options{Seconds: scMediaSeconds, Width: 320, Height: 180},
		Env: map[string]string{"WASMHLS_TRANSCODE_AHEAD_SEGMENTS": "1", "WASMHLS_TRANSCODE_PRESET": "ultrafast"}})
	if err := c.Front.WaitRotation(20*time.Second, "pod-0", "pod-1", "pod-2"); err != nil {
		t.Fatal(err)
	}
	return c
}

// scCheckPlayback asserts that every segment arrived, decoded without
// errors and joined the previous one within one frame.
func scCheckPlayback(t *testing.T, res *PlayResult) {
	t.Helper()
	t.Log(res.Report())
	if len(res.Segments) != scWantSegments() {
		t.Fatalf("%d segments played, want %d", len(res.Segments), scWantSegments())
	}
	for _, s := range res.Segments {
		if s.Frames == 0 || s.DecodeErr != "" {
			t.Errorf("segment %d (from %s): %d frames, decode errors %q", s.N, s.Pod, s.Frames, s.DecodeErr)
		}
	}
	if len(res.Gaps) != 0 {
		t.Errorf("segments do not join within a frame: %+v", res.Gaps)
	}
}

// scPodsMetric sums a metric over the running, not stopped pods but except.
func scPodsMetric(ctx context.Context, t *testing.T, c *Cluster, name string, labels map[string]string, except *Pod) float64 {
	t.Helper()
	var sum float64
	for _, p := range c.Pods {
		if p == except || !p.Running() || p.Stopped() {
			continue
		}
		v, err := p.Metric(ctx, name, labels)
		if err != nil {
			t.Errorf("%s on %s: %v", name, p.Name, err)
			continue
		}
		sum += v
	}
	return sum
}

// scPoll checks cond every 50 ms until it holds or timeout passes: cond
// reads another process's state (an external condition).
func scPoll(t *testing.T, timeout time.Duration, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out after %s waiting for %s", timeout, what)
			return false
		}
		<-tick.C
	}
	return true
}

// scPlayActing plays the whole item in real time and, once segment `at`
// has arrived, calls act with the pod that runs the job.
func scPlayActing(t *testing.T, c *Cluster, at int, act func(owner *Pod)) (*PlayResult, *Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var owner *Pod
	var ownerErr error
	res, err := c.Play(ctx, PlayOptions{Decode: true, OnSegment: func(s SegmentRecord) {
		if s.N != at {
			return
		}
		if owner, ownerErr = c.WaitOwner(ctx, 10*time.Second); ownerErr == nil {
			act(owner)
		}
	}})
	switch {
	case ownerErr != nil:
		t.Fatalf("finding the owner: %v", ownerErr)
	case err != nil:
		t.Fatalf("playback: %v", err)
	case owner == nil:
		t.Fatalf("playback ended before segment %d", at)
	}
	return res, owner
}

// Scenario 1 (labels): SIGKILL the owner → exactly one takeover, and for
// the reason "expired" (the lease ran out; nothing was released).
func TestScenarioKillOwnerTakeoverExpired(t *testing.T) {
	c := scStart(t)
	res, owner := scPlayActing(t, c, 2, func(owner *Pod) {
		if err := owner.Kill(); err != nil {
			t.Error(err)
		}
	})
	scCheckPlayback(t, res)
	for _, s := range res.Segments {
		if s.N > 2 && s.Pod == owner.Name {
			t.Errorf("segment %d served by %s after it was killed", s.N, owner.Name)
		}
	}
	t.Logf("SIGKILL of %s: largest gap between segment arrivals %s, max stall %s", owner.Name, res.MaxInterval, res.MaxStall)
	ctx := context.Background()
	if n := scPodsMetric(ctx, t, c, "wasmhls_takeovers_total", map[string]string{"reason": "expired"}, owner); n != 1 {
		t.Errorf(`takeovers{reason="expired"} on the surviving pods: %v, want 1`, n)
	}
	if n := scPodsMetric(ctx, t, c, "wasmhls_takeovers_total", nil, owner); n != 1 {
		t.Errorf("takeovers on the surviving pods: %v, want 1", n)
	}
}

// Scenario 2: SIGTERM the owner → it drains (releases its job, exits 0
// within the grace period) and another pod takes over without waiting for
// the lease: the takeover's reason is "released", not "expired".
func TestScenarioTermOwnerReleases(t *testing.T) {
	c := scStart(t)
	var exitErr error
	res, owner := scPlayActing(t, c, 2, func(owner *Pod) {
		if err := owner.Term(); err != nil {
			t.Error(err)
			return
		}
		exitErr = owner.WaitExit(30 * time.Second)
	})
	if exitErr != nil {
		t.Errorf("%s after SIGTERM: %v, want exit 0 within the grace period", owner.Name, exitErr)
	}
	scCheckPlayback(t, res)
	t.Logf("SIGTERM of %s: largest gap between segment arrivals %s, max stall %s", owner.Name, res.MaxInterval, res.MaxStall)
	ctx := context.Background()
	if n := scPodsMetric(ctx, t, c, "wasmhls_takeovers_total", map[string]string{"reason": "released"}, owner); n != 1 {
		t.Errorf(`takeovers{reason="released"} on the other pods: %v, want 1`, n)
	}
	if n := scPodsMetric(ctx, t, c, "wasmhls_takeovers_total", map[string]string{"reason": "expired"}, owner); n != 0 {
		t.Errorf(`takeovers{reason="expired"}: %v, want 0 (the drained job was released)`, n)
	}
	if !strings.Contains(owner.Log(), "jobs released") {
		t.Errorf("%s's log does not show the drain", owner.Name)
	}
}

// scPath is the path part of a segment URL of a Stream.
func scPath(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.RequestURI()
}

// Scenario 4: two pods receive the first request for the same expired job
// at the same instant → one takeover, one transcoder, the same bytes.
func TestScenarioSimultaneousRequestsOneTranscoder(t *testing.T) {
	c := scStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	items, err := c.Items(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Open(ctx, PlayOptions{Item: items[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	// pod-0 makes the job (segment 0; with ahead 1 it stops after 1) and
	// dies: the job's lease expires with nobody renewing it.
	if code, body, err := c.Pods[0].Get(ctx, scPath(t, st.SegmentURLs[0]), 30*time.Second); err != nil || code != 200 {
		t.Fatalf("segment 0 on pod-0: %d %v %.200s", code, err, body)
	}
	if err := c.Pods[0].Kill(); err != nil {
		t.Fatal(err)
	}
	before := scPodsMetric(ctx, t, c, "wasmhls_jobs_started_total", nil, nil)
	out := c.GetTogether(ctx, scPath(t, st.SegmentURLs[3]), time.Minute, c.Pods[1], c.Pods[2])
	for _, r := range out {
		if r.Err != nil || r.Status != 200 || len(r.Body) == 0 {
			t.Fatalf("segment 3 on %s: %d %v %.200s", r.Pod, r.Status, r.Err, r.Body)
		}
	}
	if string(out[0].Body) != string(out[1].Body) {
		t.Error("the two pods served different bytes for segment 3")
	}
	if n := scPodsMetric(ctx, t, c, "wasmhls_takeovers_total", nil, nil); n != 1 {
		t.Errorf("takeovers: %v, want exactly 1", n)
	}
	if n := scPodsMetric(ctx, t, c, "wasmhls_jobs_started_total", nil, nil) - before; n != 1 {
		t.Errorf("transcoder runs started for the two requests: %v, want 1", n)
	}
	// The survivors play the whole stream.
	res, err := c.Play(ctx, PlayOptions{Item: items[0].ID, Decode: true})
	if err != nil {
		t.Fatal(err)
	}
	scCheckPlayback(t, res)
}

// scFileID identifies one published segment file (a rename replaces it).
type scFileID struct {
	ino   uint64
	mtime time.Time
}

func scSegmentFiles(t *testing.T, c *Cluster) map[string]scFileID {
	t.Helper()
	out := map[string]scFileID{}
	paths, err := filepath.Glob(filepath.Join(c.TranscodeDir, "*", "*", "*.ts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = scFileID{ino: st.Sys().(*syscall.Stat_t).Ino, mtime: st.ModTime()}
	}
	return out
}

// Scenario 3: SIGSTOP the owner longer than the lease, then SIGCONT → it
// finds itself fenced and publishes no segment after the takeover.
func TestScenarioPausedOwnerIsFenced(t *testing.T) {
	c := scStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		wg     sync.WaitGroup
		before map[string]scFileID
	)
	res, owner := scPlayActing(t, c, 2, func(owner *Pod) {
		if err := owner.Stop(); err != nil {
			t.Error(err)
			return
		}
		// Resume it once another pod has taken the job over (so it was
		// stopped longer than the lease), while playback goes on.
		wg.Add(1)
		go func() {
			defer wg.Done()
			scPoll(t, time.Minute, "a takeover by another pod", func() bool {
				return scPodsMetric(ctx, t, c, "wasmhls_takeovers_total", nil, owner) >= 1
			})
			before = scSegmentFiles(t, c)
			if err := owner.Cont(); err != nil {
				t.Error(err)
			}
		}()
	})
	wg.Wait()
	scCheckPlayback(t, res)
	// The resumed pod notices: its lease was lost or its renew deadline
	// passed, so it fenced the job and runs none.
	scPoll(t, 30*time.Second, owner.Name+" fencing its job", func() bool {
		f, err1 := owner.Metric(ctx, "wasmhls_fenced_total", nil)
		j, err2 := owner.Metric(ctx, "wasmhls_jobs", nil)
		return err1 == nil && err2 == nil && f >= 1 && j == 0
	})
	// No segment that existed when it resumed was replaced by it (a fenced
	// writer would rename its temporary file over n.ts).
	after := scSegmentFiles(t, c)
	for p, id := range before {
		if a, ok := after[p]; ok && a != id {
			t.Errorf("%s was rewritten after the paused owner resumed", p)
		}
	}
}

// Scenario 6: Redis dies mid-stream and comes back empty → finished
// segments keep being served, pods report degraded but stay in rotation,
// nothing is deleted, no takeover happens, jobs are re-created, never two
// owners.
func TestScenarioRedisLostAndBack(t *testing.T) {
	c := scStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		wg     sync.WaitGroup
		before map[string]scFileID
	)
	res, _ := scPlayActing(t, c, 2, func(owner *Pod) {
		before = scSegmentFiles(t, c)
		c.Redis.Kill()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Down until the owner has self-fenced (its renew deadline
			// passed), then every pod must say degraded, not unready.
			scPoll(t, time.Minute, "the owner self-fencing", func() bool {
				v, err := owner.Metric(ctx, "wasmhls_fenced_total", nil)
				return err == nil && v >= 1
			})
			for _, p := range c.Pods {
				code, body, err := p.Get(ctx, "/readyz", 5*time.Second)
				if err != nil || code != 200 || !strings.Contains(body, "degraded") {
					t.Errorf("%s /readyz with redis down: %d %v %s; want 200 degraded", p.Name, code, err, body)
				}
			}
			c.Redis.Restart()
		}()
	})
	wg.Wait()
	scCheckPlayback(t, res)
	after := scSegmentFiles(t, c)
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s was deleted while redis was down", p)
		}
	}
	if n := scPodsMetric(ctx, t, c, "wasmhls_takeovers_total", nil, nil); n != 0 {
		t.Errorf("takeovers: %v; a store outage must not cause one", n)
	}
	owners, err := c.Owners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) > 1 {
		t.Errorf("%d pods run jobs after redis came back, want at most one", len(owners))
	}
}

// Scenario 7: the ffmpeg CLI reads the whole stream through the front while
// the owner is SIGKILLed, and decodes the full duration without errors.
func TestScenarioFFmpegThroughFailover(t *testing.T) {
	c := scStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	items, err := c.Items(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   FFmpegResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := c.FFmpegRead(ctx, items[0].ID)
		done <- result{r, err}
	}()
	owner, err := c.WaitOwner(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Kill it once a few segments exist: mid-stream.
	scPoll(t, time.Minute, "three published segments", func() bool {
		files, err := c.SegmentFiles(items[0].ID)
		n := 0
		for _, ns := range files {
			n += len(ns)
		}
		return err == nil && n >= 3
	})
	if err := owner.Kill(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.r.Errors != "" {
		t.Errorf("ffmpeg errors: %s", r.r.Errors)
	}
	if math.Abs(r.r.Duration-items[0].DurationS) > 0.5 {
		t.Errorf("ffmpeg decoded %.2f s, want the item's %.2f s", r.r.Duration, items[0].DurationS)
	}
	// The rest of the stream came from a takeover, not from finished files.
	if n := scPodsMetric(ctx, t, c, "wasmhls_takeovers_total", nil, owner); n != 1 {
		t.Errorf("takeovers on the surviving pods: %v, want 1", n)
	}
	t.Logf("ffmpeg: %.2f s, %d frames; owner %s killed", r.r.Duration, r.r.Frames, owner.Name)
}

// Scenario 5: cleanup on every pod (every 500 ms, max_age 1 s). The
// directory of a job with a live lease is never deleted, though its files
// are older than max_age and the sweeping pod is not the owner; once the
// job has ended (record deleted) the directory goes at the next sweeps.
// Refusing unsafe proposals ("../", live dirs of other jobs) and the sweep
// lock are covered with a scripted plugin in session's cleanup tests.
func TestScenarioCleanupSparesLiveJob(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-pod scenario")
	}
	if _, err := Binary(); err != nil {
		t.Skipf("cmd/wasmhls does not build:\n%v", err)
	}
	c := Start(t, Options{Redis: true, Media: testmedia.Options{Seconds: scMediaSeconds, Width: 320, Height: 180},
		Env: map[string]string{"WASMHLS_TRANSCODE_AHEAD_SEGMENTS": "1", "WASMHLS_TRANSCODE_PRESET": "ultrafast",
			"WASMHLS_CLEANUP_INTERVAL": "500ms", "WASMHLS_CLEANUP_MAX_AGE": "1s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	items, err := c.Items(ctx)
	if err != nil {
		t.Fatal(err)
	}
	item := items[0].ID
	res, err := c.Play(ctx, PlayOptions{Item: item, Decode: true, OnSegment: func(s SegmentRecord) {
		// Up to segment 5 the job has not reached the end (it runs one
		// segment ahead of the highest request), so its lease is live.
		if s.N == 0 || s.N > 5 {
			return
		}
		files, err := c.SegmentFiles(item)
		if err != nil || len(files) != 1 {
			t.Errorf("after segment %d: segment dirs %v (%v), want the live job's one", s.N, files, err)
			return
		}
		for _, ns := range files {
			if len(ns) < s.N+1 || ns[0] != 0 || ns[s.N] != s.N {
				t.Errorf("after segment %d the live job's directory holds %v: cleanup deleted live files", s.N, ns)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	scCheckPlayback(t, res)
	if n := scPodsMetric(ctx, t, c, "wasmhls_cleanup_sweeps_total", map[string]string{"result": "ok"}, nil); n < 2 {
		t.Errorf("cleanup sweeps that ran: %v, want several", n)
	}
	// The job ended at the last segment and deleted its record: its
	// directory is now past max_age with no live lease, so it goes.
	scPoll(t, time.Minute, "the ended job's directory to be swept", func() bool {
		files, err := c.SegmentFiles(item)
		return err == nil && len(files) == 0
	})
	if n := scPodsMetric(ctx, t, c, "wasmhls_cleanup_deleted_total", nil, nil); n < 1 {
		t.Errorf("wasmhls_cleanup_deleted_total: %v, want ≥ 1", n)
	}
}
