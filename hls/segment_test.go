package hls

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// variantPath returns "/hls/{item}/{session}/{variant}/" for the first
// variant of a new session.
func (e *env) variantPath() string {
	e.t.Helper()
	uris, _ := e.master()
	return "/hls/" + e.item + "/" + strings.TrimSuffix(uris[0], "index.m3u8")
}

func TestSegmentServedImmutableWithRange(t *testing.T) {
	e := newEnv(t, envOptions{})
	vp := e.variantPath()
	r := e.mustGet(vp + "0.ts")
	if ct := r.header.Get("Content-Type"); ct != "video/mp2t" {
		t.Errorf("segment Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("segment Cache-Control %q", cc)
	}
	if r.header.Get("X-Wasmhls-Pod") != testPod || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("segment headers: %v", r.header)
	}
	if len(r.body) < 188 || r.body[0] != 0x47 || len(r.body)%188 != 0 {
		t.Fatalf("segment 0 is not MPEG-TS (%d bytes)", len(r.body))
	}
	rr := e.do(http.MethodGet, vp+"0.ts", map[string]string{"Range": "bytes=188-375"})
	if rr.code != http.StatusPartialContent || string(rr.body) != string(r.body[188:376]) {
		t.Errorf("Range request: %d, %d bytes", rr.code, len(rr.body))
	}
	if h := e.do(http.MethodHead, vp+"0.ts", nil); h.code != http.StatusOK || len(h.body) != 0 ||
		h.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
		t.Errorf("HEAD segment: %d, Content-Length %q, %d body bytes", h.code, h.header.Get("Content-Length"), len(h.body))
	}
	if got := value(t, e.metrics.JobsStarted); got != 1 {
		t.Errorf("%v transcoder runs for one segment, want 1", got)
	}
	// A second session is served from the shared file: no new job.
	vp2 := e.variantPath()
	if vp2 == vp {
		t.Fatal("second master playlist reused the session")
	}
	if r2 := e.mustGet(vp2 + "0.ts"); string(r2.body) != string(r.body) {
		t.Error("second session got different bytes for segment 0")
	}
	if got := value(t, e.metrics.JobsStarted); got != 1 {
		t.Errorf("a cached segment started a job (%v runs)", got)
	}
}

func TestConcurrentRequestsShareOneJob(t *testing.T) {
	e := newEnv(t, envOptions{})
	vp := e.variantPath()
	const clients = 6
	var wg sync.WaitGroup
	bodies := make([][]byte, clients)
	codes := make([]int, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Get(e.srv.URL + vp + "2.ts")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			codes[i] = resp.StatusCode
			bodies[i], _ = io.ReadAll(resp.Body)
		}(i)
	}
	wg.Wait()
	for i := range bodies {
		if codes[i] != http.StatusOK || len(bodies[i]) == 0 || string(bodies[i]) != string(bodies[0]) {
			t.Errorf("client %d: %d, %d bytes", i, codes[i], len(bodies[i]))
		}
	}
	if got := value(t, e.metrics.JobsStarted); got != 1 {
		t.Errorf("%d concurrent requests for one missing segment started %v transcoder runs, want 1", clients, got)
	}
}

func TestSeekRestartsTheJob(t *testing.T) {
	// 12 s → 6 segments; ahead 1 keeps the job from running far.
	e := newEnv(t, envOptions{ahead: 1, media: testmedia.Options{Seconds: 12, Width: 640, Height: 360}})
	vp := e.variantPath()
	e.mustGet(vp + "0.ts")
	if got := value(t, e.metrics.JobsStarted); got != 1 {
		t.Fatalf("runs after segment 0: %v", got)
	}
	// Far ahead of the job (0 + ahead 1): a seek.
	e.mustGet(vp + "5.ts")
	if got := value(t, e.metrics.JobsStarted); got != 2 {
		t.Errorf("runs after seeking to segment 5: %v, want 2", got)
	}
	// Behind the job (it is at 5 or done): segment 3 was never made.
	dir := segDir(t, e)
	if _, err := os.Stat(filepath.Join(dir, "3.ts")); err == nil {
		t.Fatal("segment 3 exists before it was requested; the throttle did not hold")
	}
	e.mustGet(vp + "3.ts")
	if got := value(t, e.metrics.JobsStarted); got < 3 {
		t.Errorf("runs after seeking back to segment 3: %v, want 3", got)
	}
	// Segments made by different runs line up: PTS of the first frame is n × 2 s
	// (plus the shared timeline offset), whichever run made it.
	first := map[int]float64{}
	for _, n := range []int{0, 3, 5} {
		fr := testmedia.FFprobeFrames(t, filepath.Join(dir, fmt.Sprintf("%d.ts", n)))
		if len(fr) == 0 || !fr[0].KeyFrame {
			t.Fatalf("segment %d does not start with a key frame", n)
		}
		first[n] = fr[0].PTSTime
	}
	for _, n := range []int{3, 5} {
		if d := first[n] - first[0] - float64(2*n); d < -0.04 || d > 0.04 {
			t.Errorf("segment %d starts %.3f s after segment 0, want %d s ± 1 frame", n, first[n]-first[0], 2*n)
		}
	}
}

func segDir(t *testing.T, e *env) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(e.tdir, e.item, "*"))
	if len(m) != 1 {
		t.Fatalf("segment directories: %v", m)
	}
	return m[0]
}

func TestMaxJobsAnswers503(t *testing.T) {
	e := newEnv(t, envOptions{maxJobs: 1, ahead: 1})
	a := e.variantPath()
	e.mustGet(a + "0.ts") // job A makes segments 0 and 1 and pauses; it stays until idle
	b := e.variantPath()
	r := e.get(b + "4.ts")
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("second job with max_jobs 1: %d %s, want 503", r.code, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("503 without a Retry-After in seconds: %q", r.header.Get("Retry-After"))
	}
	if msg := jsonErr(t, r); !strings.Contains(msg, "max") && !strings.Contains(msg, "jobs") {
		t.Errorf("503 error %q does not say why", msg)
	}
}

func TestIdleJobStopsAndDeletesItsRecord(t *testing.T) {
	e := newEnv(t, envOptions{ahead: 1, idle: 300 * time.Millisecond})
	vp := e.variantPath()
	e.mustGet(vp + "0.ts")
	sessions := func() (jobs, recs int) {
		v, err := e.mgr.Sessions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprintf("%+v", v)
		return strings.Count(s, "Session:"), strings.Count(s, "ParamsHash:")
	}
	if j, r := sessions(); j != 1 || r != 1 {
		t.Fatalf("after the first request: %d jobs, %d records; want 1 and 1", j, r)
	}
	waitFor(t, "the idle job to stop", 30*time.Second, func() bool { j, r := sessions(); return j == 0 && r == 0 })
	if v := value(t, e.metrics.Jobs.WithLabelValues("paused")) + value(t, e.metrics.Jobs.WithLabelValues("running")); v != 0 {
		t.Errorf("wasmhls_jobs still counts %v jobs", v)
	}
	// The segments it made stay; nothing past the throttle was made.
	dir := segDir(t, e)
	for n := 0; n < 5; n++ {
		_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%d.ts", n)))
		if made := err == nil; made != (n <= 1) {
			t.Errorf("segment %d made: %v; with ahead 1 after a request for 0 want 0 and 1 only", n, made)
		}
	}
}

func TestSegmentBitrateWithinBandwidth(t *testing.T) {
	e := newEnv(t, envOptions{rungs: testRungs})
	uris, attrs := e.master()
	for i, u := range uris {
		bw, _ := strconv.Atoi(attrs[i]["BANDWIDTH"])
		vp := "/hls/" + e.item + "/" + strings.TrimSuffix(u, "index.m3u8")
		p := parseMedia(t, string(e.mustGet(vp+"index.m3u8").body))
		for n, d := range p.durations {
			body := e.mustGet(vp + p.uris[n]).body
			rate := float64(len(body)*8) / d
			if rate > float64(bw) {
				t.Errorf("%s segment %d: %.0f bit/s over %.2f s exceeds BANDWIDTH %d", u, n, rate, d, bw)
			}
		}
	}
}
