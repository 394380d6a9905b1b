package hls

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wasmhls/wasmhls/catalog"
	"github.com/wasmhls/wasmhls/internal/testmedia"
	"github.com/wasmhls/wasmhls/session"
	"github.com/wasmhls/wasmhls/transcode"
)

const testPod = "pod-test"

// testRungs: two variants of a 640x360 source, so per-variant rules are
// checked across variants.
var testRungs = []transcode.Rung{
	{Name: "360p", Height: 360, VideoBitrate: 800_000, AudioBitrate: 96_000},
	{Name: "180p", Height: 180, VideoBitrate: 300_000, AudioBitrate: 64_000},
}

type envOptions struct {
	media      testmedia.Options
	rungs      []transcode.Rung
	maxJobs    int
	ahead      int
	idle       time.Duration
	adminToken string
	plugins    PluginAdmin
	clock      func() time.Time                         // the MemoryStore's clock (nil: time.Now)
	wrapStore  func(*session.MemoryStore) session.Store // what the manager talks to (nil: the MemoryStore)
	policy     session.TakeoverPolicy                   // nil: single host, no takeovers
}

// env is a real server: catalog on generated media, manager on a
// MemoryStore, Echo behind an httptest server on loopback.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	handler http.Handler
	mgr     *session.Manager
	metrics *session.Metrics
	store   *session.MemoryStore
	item    string
	media   string
	tdir    string
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.media.Seconds == 0 {
		o.media = testmedia.Options{Seconds: 10, Width: 640, Height: 360}
	}
	if o.rungs == nil {
		o.rungs = testRungs[:1]
	}
	if o.maxJobs == 0 {
		o.maxJobs = 4
	}
	if o.ahead == 0 {
		o.ahead = 5
	}
	if o.idle == 0 {
		o.idle = time.Minute
	}
	mediaDir := t.TempDir()
	media := testmedia.Generate(t, mediaDir, o.media)
	cat, err := catalog.New(mediaDir, transcode.Probe)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics := session.NewMetrics(reg)
	store := session.NewMemoryStore(o.clock)
	var managed session.Store = store
	if o.wrapStore != nil {
		managed = o.wrapStore(store)
	}
	tdir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mgr := session.NewManager(session.ManagerConfig{
		Pod: testPod, AdvertiseURL: "http://127.0.0.1:1", TranscodeDir: tdir,
		Lease: 30 * time.Second, RenewEvery: 10 * time.Second,
		AheadSegments: o.ahead, MaxJobs: o.maxJobs, IdleTimeout: o.idle,
	}, managed, o.policy, log, metrics)
	e, err := New(Options{Pod: testPod, Catalog: cat, Manager: mgr, Rungs: o.rungs, SegmentSeconds: 2,
		Preset: "ultrafast", AdminToken: o.adminToken, Plugins: o.plugins, Registry: reg, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := mgr.Close(ctx); err != nil {
			t.Errorf("manager close: %v", err)
		}
	})
	return &env{t: t, srv: srv, handler: e, mgr: mgr, metrics: metrics, store: store,
		item: catalog.ItemID(filepath.Base(media)), media: media, tdir: tdir}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (e *env) do(method, path string, hdr map[string]string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) get(path string) response { e.t.Helper(); return e.do(http.MethodGet, path, nil) }

// mustGet fails the test unless the status is 200.
func (e *env) mustGet(path string) response {
	e.t.Helper()
	r := e.get(path)
	if r.code != http.StatusOK {
		e.t.Fatalf("GET %s = %d: %s", path, r.code, r.body)
	}
	return r
}

// variantURIs fetches a new master playlist and returns its variant URIs
// (relative) with their attribute lists.
func (e *env) master() (uris []string, attrs []map[string]string) {
	e.t.Helper()
	r := e.mustGet("/hls/" + e.item + "/master.m3u8")
	return parseMaster(e.t, string(r.body))
}

func parseMaster(t *testing.T, body string) (uris []string, attrs []map[string]string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(body))
	var pending map[string]string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			pending = parseAttrs(strings.TrimPrefix(line, "#EXT-X-STREAM-INF:"))
		case line != "" && !strings.HasPrefix(line, "#") && pending != nil:
			uris = append(uris, line)
			attrs = append(attrs, pending)
			pending = nil
		}
	}
	if len(uris) == 0 {
		t.Fatalf("master playlist has no variant:\n%s", body)
	}
	return uris, attrs
}

// parseAttrs parses an HLS attribute list (quoted strings may hold commas).
func parseAttrs(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		k, rest, _ := strings.Cut(s, "=")
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			v, rest = rest[1:1+end], rest[2+end:]
			rest = strings.TrimPrefix(rest, ",")
		} else {
			v, rest, _ = strings.Cut(rest, ",")
		}
		out[k] = v
		s = rest
	}
	return out
}

// mediaPL is a parsed media playlist.
type mediaPL struct {
	tags      []string // every #EXT line, in order
	target    int
	durations []float64
	uris      []string
}

func parseMedia(t *testing.T, body string) mediaPL {
	t.Helper()
	var p mediaPL
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) == 0 || lines[0] != "#EXTM3U" {
		t.Fatalf("media playlist does not start with #EXTM3U:\n%s", body)
	}
	for _, line := range lines {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			p.target, _ = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:"))
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			d, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("bad EXTINF %q", line)
			}
			p.durations = append(p.durations, d)
		case line != "" && !strings.HasPrefix(line, "#"):
			p.uris = append(p.uris, line)
		}
		if strings.HasPrefix(line, "#EXT") {
			p.tags = append(p.tags, line)
		}
	}
	return p
}

func (p mediaPL) has(tag string) bool {
	for _, t := range p.tags {
		if t == tag {
			return true
		}
	}
	return false
}

// jsonErr decodes an {"error": ...} body, failing the test if it is not one.
func jsonErr(t *testing.T, r response) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("want a JSON {\"error\": ...} body, got %d %q", r.code, r.body)
	}
	return e.Error
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("metric %s is neither a counter nor a gauge", m.Desc())
	return 0
}

// waitFor polls cond (an external condition) until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
