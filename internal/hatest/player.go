package hatest

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PlayOptions configure Play.
type PlayOptions struct {
	Item string // item id; "" = the first item of /api/v1/items
	// Variant is the index of the variant in the master playlist.
	Variant int
	// Ahead is the buffer, in segments: segment n is fetched when segment
	// n-Ahead starts playing (default 2).
	Ahead int
	// RequestTimeout bounds one attempt (default 15s); a failed attempt is
	// retried after Retry-After (capped at 1s) until SegmentTimeout.
	RequestTimeout time.Duration
	SegmentTimeout time.Duration // default 60s
	// Decode runs ffmpeg over each segment and records decode errors.
	Decode bool
	// Dir receives the segments as n.ts; default a temp dir of the test.
	Dir string
	// OnSegment is called after each segment is recorded (from Play's
	// goroutine): the place to kill a pod after segment 2.
	OnSegment func(SegmentRecord)
	// Base is where requests go; default the cluster's front.
	Base string
}

// SegmentRecord is what the client saw of one segment.
type SegmentRecord struct {
	N         int
	URL       string
	Pod       string // X-Wasmhls-Pod of the answer
	Backend   string // the pod the front picked (X-Hatest-Backend)
	Requested time.Time
	Arrived   time.Time
	Attempts  int
	Errors    []string // failed attempts ("503 ...", "timeout")
	Bytes     int64
	EXTINF    float64
	// Video timeline of the segment (seconds, from ffprobe): the first and
	// last packet PTS, the frame duration and the number of frames.
	FirstPTS, LastPTS, FrameDur float64
	Frames                      int
	// Stall is how long playback waited for this segment (0 when it came
	// in time).
	Stall     time.Duration
	DecodeErr string // with PlayOptions.Decode: ffmpeg's errors, "" if clean
	Path      string // the saved file
}

// Gap is a join between segments N-1 and N that is off by more than half a
// frame: Offset = first PTS of N − (last PTS of N-1 + one frame).
type Gap struct {
	N      int
	Offset float64
}

// PlayResult is one complete playback.
type PlayResult struct {
	Item       string
	VariantURL string
	Segments   []SegmentRecord
	Gaps       []Gap
	TotalStall time.Duration
	MaxStall   time.Duration
	// MaxInterval is the longest time between two consecutive arrivals.
	MaxInterval time.Duration
	// Pods is the serving pod of each segment, in order (for reports).
	Pods []string
}

// Play plays one item through the front (or Base) in real time: master
// playlist, one variant's media playlist, then every segment at playback
// pace with a buffer of Ahead segments. It fails only when a segment cannot
// be had within SegmentTimeout or the playlists are malformed; everything
// else is recorded for the test to judge.
func (c *Cluster) Play(ctx context.Context, opt PlayOptions) (*PlayResult, error) {
	if opt.Ahead <= 0 {
		opt.Ahead = 2
	}
	if opt.RequestTimeout <= 0 {
		opt.RequestTimeout = 15 * time.Second
	}
	if opt.SegmentTimeout <= 0 {
		opt.SegmentTimeout = 60 * time.Second
	}
	if opt.Base == "" {
		opt.Base = c.Front.URL
	}
	if opt.Dir == "" {
		d, err := os.MkdirTemp(c.workDir, "play-")
		if err != nil {
			return nil, fmt.Errorf("hatest: play dir: %w", err)
		}
		opt.Dir = d
	}
	if opt.Item == "" {
		items, err := c.Items(ctx)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, fmt.Errorf("hatest: no items in %s", c.MediaDir)
		}
		opt.Item = items[0].ID
	}
	res := &PlayResult{Item: opt.Item}
	st, err := c.open(ctx, opt)
	if err != nil {
		return nil, err
	}
	res.VariantURL = st.VariantURL
	segs := st.segs

	var (
		playStart time.Time     // when segment 0 started playing
		stalled   time.Duration // total playback stall so far
		startAt   = func(k int) time.Time {
			var s float64
			for _, sg := range segs[:k] {
				s += sg.dur
			}
			return playStart.Add(stalled + time.Duration(s*float64(time.Second)))
		}
	)
	for n, sg := range segs {
		if n >= opt.Ahead {
			// Fetch n when n-Ahead starts playing: the buffer is full until then.
			if err := waitUntil(ctx, startAt(n-opt.Ahead)); err != nil {
				return res, err
			}
		}
		u := st.SegmentURLs[n]
		rec := SegmentRecord{N: n, URL: u, EXTINF: sg.dur, Requested: time.Now()}
		got, attempts, err := c.fetch(ctx, u, opt)
		rec.Attempts, rec.Errors = len(attempts)+1, attempts
		if err != nil {
			return res, fmt.Errorf("hatest: segment %d: %w", n, err)
		}
		rec.Arrived, rec.Bytes = got.at, int64(len(got.body))
		rec.Pod, rec.Backend = got.header.Get(HeaderPod), got.header.Get(HeaderBackend)
		if n == 0 {
			playStart = rec.Arrived
		} else if due := startAt(n); rec.Arrived.After(due) {
			rec.Stall = rec.Arrived.Sub(due)
			stalled += rec.Stall
		}
		rec.Path = filepath.Join(opt.Dir, strconv.Itoa(n)+".ts")
		if err := os.WriteFile(rec.Path, got.body, 0o644); err != nil {
			return res, fmt.Errorf("hatest: save segment %d: %w", n, err)
		}
		if err := probeSegment(ctx, &rec); err != nil {
			return res, err
		}
		if opt.Decode {
			rec.DecodeErr = decodeErrors(ctx, rec.Path)
		}
		res.Segments = append(res.Segments, rec)
		if opt.OnSegment != nil {
			opt.OnSegment(rec)
		}
	}
	res.summarize()
	return res, nil
}

func (r *PlayResult) summarize() {
	for i, s := range r.Segments {
		r.Pods = append(r.Pods, s.Pod)
		r.TotalStall += s.Stall
		r.MaxStall = max(r.MaxStall, s.Stall)
		if i == 0 {
			continue
		}
		prev := r.Segments[i-1]
		r.MaxInterval = max(r.MaxInterval, s.Arrived.Sub(prev.Arrived))
		off := s.FirstPTS - (prev.LastPTS + prev.FrameDur)
		if math.Abs(off) > prev.FrameDur/2 {
			r.Gaps = append(r.Gaps, Gap{N: s.N, Offset: off})
		}
	}
}

// Report is a one-line-per-segment table for test logs and the benchmark.
func (r *PlayResult) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "item %s variant %s: %d segments, stall total %s max %s, max interval %s, %d gaps\n",
		r.Item, r.VariantURL, len(r.Segments), r.TotalStall, r.MaxStall, r.MaxInterval, len(r.Gaps))
	var t0 time.Time
	for _, s := range r.Segments {
		if t0.IsZero() {
			t0 = s.Requested
		}
		fmt.Fprintf(&b, "  %3d %-8s via %-8s +%7.3fs %7d B pts %.3f..%.3f (%d frames) stall %s attempts %d %s\n",
			s.N, s.Pod, s.Backend, s.Arrived.Sub(t0).Seconds(), s.Bytes, s.FirstPTS, s.LastPTS, s.Frames,
			s.Stall.Round(time.Millisecond), s.Attempts, strings.Join(s.Errors, "; "))
	}
	for _, g := range r.Gaps {
		fmt.Fprintf(&b, "  gap before segment %d: %+.3fs\n", g.N, g.Offset)
	}
	return b.String()
}

// Stream is an opened play session: its playlists and segment URLs.
type Stream struct {
	Item        string
	MasterURL   string
	VariantURL  string // carries the session id the master playlist assigned
	SegmentURLs []string
	Durations   []float64 // EXTINF of each segment
	segs        []mediaSegment
}

// Open starts a play session as a player does (master playlist, then the
// variant's media playlist) without fetching segments. Options used: Item
// (required), Variant, Base, RequestTimeout, SegmentTimeout.
func (c *Cluster) Open(ctx context.Context, opt PlayOptions) (*Stream, error) {
	if opt.Item == "" {
		return nil, fmt.Errorf("hatest: Open needs an item")
	}
	if opt.Base == "" {
		opt.Base = c.Front.URL
	}
	if opt.RequestTimeout <= 0 {
		opt.RequestTimeout = 15 * time.Second
	}
	if opt.SegmentTimeout <= 0 {
		opt.SegmentTimeout = 60 * time.Second
	}
	return c.open(ctx, opt)
}

func (c *Cluster) open(ctx context.Context, opt PlayOptions) (*Stream, error) {
	st := &Stream{Item: opt.Item, MasterURL: opt.Base + "/hls/" + url.PathEscape(opt.Item) + "/master.m3u8"}
	master, _, err := c.fetch(ctx, st.MasterURL, opt)
	if err != nil {
		return nil, err
	}
	variants := playlistURIs(string(master.body))
	if opt.Variant >= len(variants) {
		return nil, fmt.Errorf("hatest: master playlist has %d variants, want index %d:\n%s", len(variants), opt.Variant, master.body)
	}
	if st.VariantURL, err = resolve(st.MasterURL, variants[opt.Variant]); err != nil {
		return nil, err
	}
	media, _, err := c.fetch(ctx, st.VariantURL, opt)
	if err != nil {
		return nil, err
	}
	if st.segs, err = parseMediaPlaylist(string(media.body)); err != nil {
		return nil, fmt.Errorf("hatest: %s: %w", st.VariantURL, err)
	}
	for _, sg := range st.segs {
		u, err := resolve(st.VariantURL, sg.uri)
		if err != nil {
			return nil, err
		}
		st.SegmentURLs = append(st.SegmentURLs, u)
		st.Durations = append(st.Durations, sg.dur)
	}
	return st, nil
}

type fetched struct {
	body   []byte
	header http.Header
	at     time.Time
}

// fetch GETs u, retrying errors and non-200 answers until SegmentTimeout.
// It returns the failed attempts' descriptions.
func (c *Cluster) fetch(ctx context.Context, u string, opt PlayOptions) (fetched, []string, error) {
	deadline := time.Now().Add(opt.SegmentTimeout)
	var fails []string
	for {
		wait := 200 * time.Millisecond
		f, err := c.fetchOnce(ctx, u, opt.RequestTimeout)
		if err == nil && f.status == http.StatusOK {
			return fetched{body: f.body, header: f.header, at: time.Now()}, fails, nil
		}
		if err != nil {
			fails = append(fails, err.Error())
		} else {
			fails = append(fails, fmt.Sprintf("%d %s", f.status, strings.TrimSpace(string(f.body))))
			if s, perr := strconv.Atoi(f.header.Get("Retry-After")); perr == nil {
				wait = min(max(time.Duration(s)*time.Second, 100*time.Millisecond), time.Second)
			}
			if f.status == http.StatusNotFound || f.status == http.StatusBadRequest {
				return fetched{}, fails, fmt.Errorf("GET %s: %s", u, fails[len(fails)-1])
			}
		}
		if time.Now().Add(wait).After(deadline) {
			return fetched{}, fails, fmt.Errorf("GET %s: no answer within %s: %s", u, opt.SegmentTimeout, strings.Join(fails, "; "))
		}
		if err := waitUntil(ctx, time.Now().Add(wait)); err != nil {
			return fetched{}, fails, err
		}
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (c *Cluster) fetchOnce(ctx context.Context, u string, timeout time.Duration) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return answer{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := readAllLimit(resp.Body, 256<<20)
	if err != nil {
		return answer{}, fmt.Errorf("read %s: %w", u, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// waitUntil blocks until t (playback pacing) or ctx ends.
func waitUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("hatest: url %q: %w", base, err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("hatest: playlist uri %q: %w", ref, err)
	}
	return b.ResolveReference(r).String(), nil
}

// playlistURIs returns the URI lines of a playlist.
func playlistURIs(text string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

type mediaSegment struct {
	uri string
	dur float64
}

// parseMediaPlaylist reads EXTINF + URI pairs of a VOD media playlist.
func parseMediaPlaylist(text string) ([]mediaSegment, error) {
	var (
		out []mediaSegment
		dur = -1.0
		end bool
	)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			d, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("bad EXTINF %q", l)
			}
			dur = d
		case l == "#EXT-X-ENDLIST":
			end = true
		case l == "" || strings.HasPrefix(l, "#"):
		default:
			if dur < 0 {
				return nil, fmt.Errorf("segment %q without EXTINF", l)
			}
			out = append(out, mediaSegment{uri: l, dur: dur})
			dur = -1
		}
	}
	if !end {
		return nil, fmt.Errorf("no #EXT-X-ENDLIST (want a complete VOD playlist)")
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no segments")
	}
	return out, nil
}
