package main

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wasmhls/wasmhls/internal/hatest"
)

// The HA workload of issue 4: three pods, one Redis, lease 3 s, renew 1 s,
// 2 s segments of a 640x360 clip encoded to one 360p rung.
const (
	haLease      = 3 * time.Second
	haRenew      = time.Second
	haSegment    = 2
	haAhead      = 3 // transcode.ahead_segments: the owner pauses 3 segments ahead
	haClipSecs   = 40
	haLadder     = "[{name: 360p, height: 360, video_bitrate: 800k, audio_bitrate: 96k}]"
	haMinRuns    = 5 // the issue asks for at least five runs per failure kind
	haPlotFile   = "ha-failover.png"
	haFetchLimit = 60 * time.Second
)

// ha measures failover stalls (SIGKILL, SIGTERM of the pod producing a
// stream), the happy-path cost of store-redis against store-null, and plots
// segment arrivals across a failover (bench/ha-failover.png).
func (b *bench) ha() (string, error) {
	ctx := context.Background()
	media, err := b.haMedia()
	if err != nil {
		return "", err
	}
	rd, err := startRedis(filepath.Join(b.work, "ha", "redis"))
	if err != nil {
		return "", err
	}
	defer rd.stop()

	runs := max(b.runs, haMinRuns)
	var md strings.Builder
	fmt.Fprintf(&md, "## High availability\n\n3 pods (`wasmhls serve` processes) sharing one transcode directory and one "+
		"redis-server (store-redis), lease %s, renew every %s, %d s segments, %d s 640x360 clip to one 360p rung, "+
		"ahead_segments %d; %d runs each, a fresh cluster per run.\n\n", haLease, haRenew, haSegment, haClipSecs, haAhead, runs)

	kills, err := b.failovers(ctx, media, rd.url, "SIGKILL", runs)
	if err != nil {
		return md.String(), err
	}
	terms, err := b.failovers(ctx, media, rd.url, "SIGTERM", runs)
	if err != nil {
		return md.String(), err
	}
	var encode []float64
	for _, r := range append(append([]failoverRun(nil), kills...), terms...) {
		if r.encodeS > 0 {
			encode = append(encode, r.encodeS)
		}
	}
	segEncode := median(encode)
	fmt.Fprintf(&md, "Stall: from the signal to the owner until the client has the first segment that did not exist yet "+
		"(requested at once through the round-robin front, retried on 503). One segment's encode time (median of "+
		"`wasmhls_transcode_seconds` on the surviving pods): %.3f s.\n\n", segEncode)
	md.WriteString("| owner gets | stall median | stall max | goal | served by another pod | takeovers per run |\n| --- | --- | --- | --- | --- | --- |\n")
	killGoal := (haLease + time.Second).Seconds()
	termGoal := 1.5 * segEncode
	for _, row := range []struct {
		kind string
		rs   []failoverRun
		goal float64
		desc string
	}{
		{"SIGKILL", kills, killGoal, fmt.Sprintf("≤ lease + 1 s = %.1f s", killGoal)},
		{"SIGTERM", terms, termGoal, fmt.Sprintf("≤ 1.5 × segment encode = %.2f s", termGoal)},
	} {
		var stalls, takeovers []float64
		other := 0
		for _, r := range row.rs {
			stalls = append(stalls, r.stall.Seconds())
			takeovers = append(takeovers, r.takeovers)
			if r.servedBy != r.owner {
				other++
			}
		}
		med, mx := median(stalls), maxOf(stalls)
		fmt.Fprintf(&md, "| %s | %.2f s | %.2f s | %s: %s | %d/%d | %s |\n", row.kind, med, mx, row.desc,
			verdict(mx <= row.goal, "met (max)", "missed"), other, len(row.rs), fmtList(takeovers, "%.0f"))
	}
	md.WriteString("\n")

	null, redisRuns, err := b.happyPath(ctx, media, rd.url, runs)
	if err != nil {
		return md.String(), err
	}
	ttfsN, ttfsR := median(null.ttfs), median(redisRuns.ttfs)
	spdN, spdR := median(null.speed), median(redisRuns.speed)
	md.WriteString("Cost of HA on the happy path (one pod, a fresh transcode directory per run): time to first segment of a new " +
		"stream, and throughput fetching every segment in order as fast as the pod produces them.\n\n")
	md.WriteString("| | store-null | store-redis | redis / null | goal |\n| --- | --- | --- | --- | --- |\n")
	fmt.Fprintf(&md, "| time to first segment | %.3f s | %.3f s | %.3f× | ≤ 1.05×: %s |\n", ttfsN, ttfsR, ttfsR/ttfsN,
		verdict(ttfsR/ttfsN <= 1.05, "met", "missed"))
	fmt.Fprintf(&md, "| throughput (× real time) | %.2f | %.2f | %.3f× | ≥ 0.98×: %s |\n\n", spdN, spdR, spdR/spdN,
		verdict(spdR/spdN >= 0.98, "met", "missed"))

	plot, err := b.failoverPlot(ctx, media, rd.url)
	if err != nil {
		return md.String(), err
	}
	md.WriteString(plot)
	return md.String(), nil
}

func verdict(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// haMedia makes (once) the HA clip in its own media directory.
func (b *bench) haMedia() (string, error) {
	dir := filepath.Join(b.work, "ha", "media")
	path := filepath.Join(dir, "ha640x360.mp4")
	if _, err := os.Stat(path); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Join(b.work, "ha", "clip.tmp.mp4")
	_, err := runMeasured(context.Background(), "ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(haClipSecs), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "96k", "-shortest", tmp)
	if err != nil {
		return "", err
	}
	return dir, os.Rename(tmp, path)
}

// haCluster starts a fresh cluster of pods in its own work directory.
func (b *bench) haCluster(ctx context.Context, name, media, redisURL string, pods int) (*hatest.Cluster, error) {
	dir := filepath.Join(b.work, "ha", name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c, err := hatest.Launch(ctx, hatest.Options{
		Pods: pods, RedisURL: redisURL, WorkDir: dir, MediaDir: media, Binary: b.bin,
		Lease: haLease, RenewEvery: haRenew, SegmentSeconds: haSegment, Ladder: haLadder,
		Env: map[string]string{"WASMHLS_TRANSCODE_AHEAD_SEGMENTS": strconv.Itoa(haAhead), "WASMHLS_LOG_LEVEL": "info"},
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

type failoverRun struct {
	stall     time.Duration
	owner     string
	servedBy  string
	takeovers float64
	encodeS   float64 // mean segment encode time on the survivors
}

func (b *bench) failovers(ctx context.Context, media, redisURL, sig string, runs int) ([]failoverRun, error) {
	var out []failoverRun
	for i := range runs {
		r, err := b.failover(ctx, media, redisURL, sig, i)
		if err != nil {
			return out, fmt.Errorf("%s run %d: %w", sig, i+1, err)
		}
		fmt.Fprintf(os.Stderr, "benchreport: ha %s run %d: stall %s (owner %s, then %s)\n", sig, i+1, r.stall.Round(time.Millisecond), r.owner, r.servedBy)
		out = append(out, r)
	}
	return out, nil
}

// failover: a stream's owner pauses ahead_segments ahead of the client;
// the owner gets sig; the client at once asks for the first segment that
// does not exist. The stall is the time from the signal to that segment.
func (b *bench) failover(ctx context.Context, media, redisURL, sig string, run int) (failoverRun, error) {
	c, err := b.haCluster(ctx, fmt.Sprintf("%s-%d", strings.ToLower(sig), run), media, redisURL, 3)
	if err != nil {
		return failoverRun{}, err
	}
	defer c.Close()
	items, err := c.Items(ctx)
	if err != nil || len(items) == 0 {
		return failoverRun{}, fmt.Errorf("items: %v (%d)", err, len(items))
	}
	st, err := c.Open(ctx, hatest.PlayOptions{Item: items[0].ID})
	if err != nil {
		return failoverRun{}, err
	}
	if _, err := c.FetchRetry(ctx, st.SegmentURLs[0], 15*time.Second, haFetchLimit); err != nil {
		return failoverRun{}, err
	}
	owner, err := c.WaitOwner(ctx, 15*time.Second)
	if err != nil {
		return failoverRun{}, err
	}
	target := haAhead + 1 // the owner stops after segment haAhead (highest request 0)
	if target >= len(st.SegmentURLs) {
		return failoverRun{}, fmt.Errorf("clip too short: %d segments", len(st.SegmentURLs))
	}
	if err := waitSegments(ctx, c, items[0].ID, target, 30*time.Second); err != nil {
		return failoverRun{}, err
	}
	t0 := time.Now()
	switch sig {
	case "SIGKILL":
		err = owner.Kill()
	case "SIGTERM":
		err = owner.Term()
	default:
		err = fmt.Errorf("unknown signal %s", sig)
	}
	if err != nil {
		return failoverRun{}, err
	}
	f, err := c.FetchRetry(ctx, st.SegmentURLs[target], 10*time.Second, haFetchLimit)
	if err != nil {
		return failoverRun{}, fmt.Errorf("segment %d after %s of %s: %w", target, sig, owner.Name, err)
	}
	r := failoverRun{stall: f.Arrived.Sub(t0), owner: owner.Name, servedBy: f.Pod}
	if sig == "SIGTERM" {
		if err := owner.WaitExit(30 * time.Second); err != nil {
			return r, fmt.Errorf("drain of %s: %w", owner.Name, err)
		}
	}
	var sum, count float64
	for _, p := range c.Pods {
		if p == owner || !p.Running() {
			continue
		}
		n, err := p.Metric(ctx, "wasmhls_takeovers_total", nil)
		if err != nil {
			return r, err
		}
		r.takeovers += n
		s, err1 := p.Metric(ctx, "wasmhls_transcode_seconds_sum", nil)
		k, err2 := p.Metric(ctx, "wasmhls_transcode_seconds_count", nil)
		if err1 == nil && err2 == nil {
			sum, count = sum+s, count+k
		}
	}
	if count > 0 {
		r.encodeS = sum / count
	}
	return r, nil
}

// waitSegments polls the shared directory until segments 0..n-1 of item
// exist (the owner has produced up to its pause point).
func waitSegments(ctx context.Context, c *hatest.Cluster, item string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		dirs, err := c.SegmentFiles(item)
		if err != nil {
			return err
		}
		for _, ns := range dirs {
			if len(ns) >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("segments 0..%d of %s not produced within %s (have %v)", n-1, item, timeout, dirs)
		}
		time.Sleep(50 * time.Millisecond) // polling the shared directory, an external condition
	}
}

type happyRuns struct{ ttfs, speed []float64 }

// happyPath measures one pod on store-null and on store-redis, alternating
// so machine noise hits both alike.
func (b *bench) happyPath(ctx context.Context, media, redisURL string, runs int) (null, redis happyRuns, err error) {
	for i := range runs {
		for _, store := range []string{"null", "redis"} {
			url := ""
			if store == "redis" {
				url = redisURL
			}
			ttfs, speed, err := b.happyRun(ctx, media, url, fmt.Sprintf("happy-%s-%d", store, i))
			if err != nil {
				return null, redis, fmt.Errorf("happy path, store-%s run %d: %w", store, i+1, err)
			}
			r := &null
			if store == "redis" {
				r = &redis
			}
			r.ttfs, r.speed = append(r.ttfs, ttfs), append(r.speed, speed)
		}
	}
	return null, redis, nil
}

func (b *bench) happyRun(ctx context.Context, media, redisURL, name string) (ttfs, speed float64, err error) {
	c, err := b.haCluster(ctx, name, media, redisURL, 1)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	items, err := c.Items(ctx)
	if err != nil || len(items) == 0 {
		return 0, 0, fmt.Errorf("items: %v (%d)", err, len(items))
	}
	st, err := c.Open(ctx, hatest.PlayOptions{Item: items[0].ID})
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	for n, u := range st.SegmentURLs {
		f, err := c.FetchRetry(ctx, u, 30*time.Second, haFetchLimit)
		if err != nil {
			return 0, 0, err
		}
		if n == 0 {
			ttfs = f.Arrived.Sub(t0).Seconds()
		}
	}
	var total float64
	for _, d := range st.Durations {
		total += d
	}
	return ttfs, total / time.Since(t0).Seconds(), nil
}

// redisServer is a redis-server the benchmark owns.
type redisServer struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

func startRedis(dir string) (*redisServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server (install the redis-server package): %w", err)
	}
	r := &redisServer{cmd: cmd, url: "redis://" + addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pingRedis(addr) == nil {
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("redis-server on %s exited at start", addr)
		default:
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING within 10s", addr)
		}
		time.Sleep(50 * time.Millisecond) // polling the server's port
	}
}

func pingRedis(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func (r *redisServer) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// failoverPlot plays one stream in real time through the front, SIGKILLs
// the owner when segment 4 arrives, and draws every segment's arrival time
// (x) against its number (y), coloured by the pod that served it.
func (b *bench) failoverPlot(ctx context.Context, media, redisURL string) (string, error) {
	c, err := b.haCluster(ctx, "plot", media, redisURL, 3)
	if err != nil {
		return "", err
	}
	defer c.Close()
	var (
		killAt time.Time
		killed string
		kerr   error
	)
	res, err := c.Play(ctx, hatest.PlayOptions{Ahead: 2, OnSegment: func(s hatest.SegmentRecord) {
		if s.N != 4 || killed != "" {
			return
		}
		owner, err := c.WaitOwner(ctx, 10*time.Second)
		if err != nil {
			kerr = err
			return
		}
		killed, killAt = owner.Name, time.Now()
		kerr = owner.Kill()
	}})
	if err != nil {
		return "", fmt.Errorf("failover plot: %w", err)
	}
	if kerr != nil {
		return "", fmt.Errorf("failover plot: kill the owner: %w", kerr)
	}
	out := filepath.Join(b.root, "bench", haPlotFile)
	if err := drawArrivals(out, res, killAt); err != nil {
		return "", err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "![segment arrivals across a failover](%s)\n\n", haPlotFile)
	fmt.Fprintf(&md, "One real-time playback (buffer 2 segments) through the round-robin front; the owner (%s) was SIGKILLed "+
		"when segment 4 arrived (grey line). x: seconds since the first request; y: segment number; colour: the pod that "+
		"answered (red pod-0, green pod-1, blue pod-2). Total stall %.2f s, longest gap between arrivals %.2f s, "+
		"%d timestamp gaps between segments.\n", killed, res.TotalStall.Seconds(), res.MaxInterval.Seconds(), len(res.Gaps))
	return md.String(), nil
}

// drawArrivals writes a PNG scatter plot of res: x = arrival time since the
// first request, y = segment number, colour = serving pod, a vertical grey
// line at killAt. No text: the report carries the legend.
func drawArrivals(path string, res *hatest.PlayResult, killAt time.Time) error {
	if len(res.Segments) == 0 {
		return fmt.Errorf("plot: no segments")
	}
	const w, h, margin = 900, 360, 30
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	t0 := res.Segments[0].Requested
	tmax := res.Segments[len(res.Segments)-1].Arrived.Sub(t0).Seconds()
	tmax = max(tmax, killAt.Sub(t0).Seconds()) * 1.02
	nmax := float64(max(len(res.Segments)-1, 1))
	x := func(t float64) int { return margin + int(t/tmax*float64(w-2*margin)) }
	y := func(n float64) int { return h - margin - int(n/nmax*float64(h-2*margin)) }
	black, grey := color.RGBA{0, 0, 0, 255}, color.RGBA{150, 150, 150, 255}
	for px := margin; px <= w-margin; px++ { // x axis
		img.Set(px, h-margin, black)
	}
	for py := margin; py <= h-margin; py++ { // y axis
		img.Set(margin, py, black)
	}
	for s := 0.0; s <= tmax; s += 5 { // a tick every 5 s
		for d := 0; d < 5; d++ {
			img.Set(x(s), h-margin+d, black)
		}
	}
	for n := 0.0; n <= nmax; n++ { // a tick every segment
		for d := 0; d < 4; d++ {
			img.Set(margin-d, y(n), black)
		}
	}
	if !killAt.IsZero() {
		kx := x(killAt.Sub(t0).Seconds())
		for py := margin; py <= h-margin; py += 2 {
			img.Set(kx, py, grey)
		}
	}
	colours := map[string]color.RGBA{
		"pod-0": {214, 39, 40, 255}, "pod-1": {44, 160, 44, 255}, "pod-2": {31, 119, 180, 255},
	}
	for _, s := range res.Segments {
		c, ok := colours[s.Pod]
		if !ok {
			c = black
		}
		cx, cy := x(s.Arrived.Sub(t0).Seconds()), y(float64(s.N))
		draw.Draw(img, image.Rect(cx-3, cy-3, cx+4, cy+4), image.NewUniform(c), image.Point{}, draw.Src)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}
