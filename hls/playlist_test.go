package hls

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// One test per "HLS output rule" of DESIGN.md that a playlist can show.

func TestMediaPlaylistIsCompleteVOD(t *testing.T) {
	e := newEnv(t, envOptions{rungs: testRungs})
	uris, _ := e.master()
	for _, u := range uris {
		r := e.mustGet("/hls/" + e.item + "/" + u)
		p := parseMedia(t, string(r.body))
		for _, tag := range []string{"#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST", "#EXT-X-INDEPENDENT-SEGMENTS"} {
			if !p.has(tag) {
				t.Errorf("%s lacks %s:\n%s", u, tag, r.body)
			}
		}
		if p.tags[len(p.tags)-1] != "#EXT-X-ENDLIST" {
			t.Errorf("%s: #EXT-X-ENDLIST is not the last tag", u)
		}
		// Complete from the first request (no segment exists yet) and never changed.
		if len(p.uris) != 5 || len(p.durations) != 5 {
			t.Errorf("%s lists %d segments, want 5 for 10 s of 2 s segments", u, len(p.uris))
		}
		for i, s := range p.uris {
			if s != strconv.Itoa(i)+".ts" {
				t.Errorf("%s: segment %d URI %q, want %d.ts", u, i, s, i)
			}
		}
		if again := e.mustGet("/hls/" + e.item + "/" + u); string(again.body) != string(r.body) {
			t.Errorf("%s changed between two requests", u)
		}
	}
}

func TestTargetDurationSameInEveryVariantAndCoversEveryEXTINF(t *testing.T) {
	// 8.8 s of 2 s segments: the tail (0.8 s) is folded into the last segment (2.8 s),
	// so TARGETDURATION must follow the longest one.
	e := newEnv(t, envOptions{rungs: testRungs, media: testmedia.Options{Seconds: 8.8, Width: 640, Height: 360}})
	uris, _ := e.master()
	targets := map[int]bool{}
	for _, u := range uris {
		p := parseMedia(t, string(e.mustGet("/hls/"+e.item+"/"+u).body))
		targets[p.target] = true
		for i, d := range p.durations {
			if int(math.Round(d)) > p.target {
				t.Errorf("%s: EXTINF %d = %.3f rounds above TARGETDURATION %d", u, i, d, p.target)
			}
		}
		if p.target != 3 {
			t.Errorf("%s: TARGETDURATION %d, want 3 (the longest segment, rounded)", u, p.target)
		}
	}
	if len(targets) != 1 {
		t.Errorf("TARGETDURATION differs between variants: %v", targets)
	}
}

func TestEXTINFSumsToTheRealDuration(t *testing.T) {
	for _, opt := range []testmedia.Options{
		{Seconds: 10, Width: 640, Height: 360},
		{Seconds: 7.5, Width: 640, Height: 360, NoAudio: true},
	} {
		e := newEnv(t, envOptions{media: opt})
		f, _ := testmedia.FFprobeFormat(t, e.media)
		uris, _ := e.master()
		p := parseMedia(t, string(e.mustGet("/hls/"+e.item+"/"+uris[0]).body))
		var sum float64
		for _, d := range p.durations {
			sum += d
		}
		const frame = 1.0 / 25
		if math.Abs(sum-f.Duration) > frame {
			t.Errorf("%gs media: EXTINF sum %.4f, ffprobe duration %.4f: more than one frame apart", opt.Seconds, sum, f.Duration)
		}
	}
}

func TestNoDiscontinuityTags(t *testing.T) {
	e := newEnv(t, envOptions{rungs: testRungs})
	uris, _ := e.master()
	for _, u := range uris {
		body := string(e.mustGet("/hls/" + e.item + "/" + u).body)
		if strings.Contains(body, "DISCONTINUITY") {
			t.Errorf("%s has a discontinuity tag:\n%s", u, body)
		}
	}
}

func TestMasterPlaylistAttributes(t *testing.T) {
	e := newEnv(t, envOptions{rungs: testRungs})
	r := e.mustGet("/hls/" + e.item + "/master.m3u8")
	if !strings.HasPrefix(string(r.body), "#EXTM3U\n") || !strings.Contains(string(r.body), "#EXT-X-INDEPENDENT-SEGMENTS") {
		t.Errorf("master playlist header:\n%s", r.body)
	}
	uris, attrs := parseMaster(t, string(r.body))
	if len(uris) != 2 {
		t.Fatalf("%d variants, want 2 (360p, 180p)", len(uris))
	}
	codecsRe := regexp.MustCompile(`^avc1\.[0-9A-Fa-f]{6},mp4a\.40\.2$`)
	wantRes := []string{"640x360", "320x180"}
	uriRe := regexp.MustCompile(`^([A-Za-z0-9_-]{8,64})/(360p|180p)/index\.m3u8$`)
	var session string
	for i, a := range attrs {
		bw, err1 := strconv.Atoi(a["BANDWIDTH"])
		avg, err2 := strconv.Atoi(a["AVERAGE-BANDWIDTH"])
		if err1 != nil || err2 != nil || bw <= 0 || avg <= 0 || avg > bw {
			t.Errorf("variant %d: BANDWIDTH %q AVERAGE-BANDWIDTH %q: want positive, average ≤ peak", i, a["BANDWIDTH"], a["AVERAGE-BANDWIDTH"])
		}
		if !codecsRe.MatchString(a["CODECS"]) {
			t.Errorf("variant %d: CODECS %q, want avc1.PPCCLL,mp4a.40.2", i, a["CODECS"])
		}
		if a["RESOLUTION"] != wantRes[i] {
			t.Errorf("variant %d: RESOLUTION %q, want %s", i, a["RESOLUTION"], wantRes[i])
		}
		if fr, err := strconv.ParseFloat(a["FRAME-RATE"], 64); err != nil || math.Abs(fr-25) > 0.001 {
			t.Errorf("variant %d: FRAME-RATE %q, want 25.000", i, a["FRAME-RATE"])
		}
		m := uriRe.FindStringSubmatch(uris[i])
		if m == nil {
			t.Fatalf("variant URI %q is not {session}/{variant}/index.m3u8", uris[i])
		}
		if session != "" && m[1] != session {
			t.Errorf("variants name different sessions: %s, %s", session, m[1])
		}
		session = m[1]
	}
	// No audio → no mp4a in CODECS.
	na := newEnv(t, envOptions{media: testmedia.Options{Seconds: 4, Width: 640, Height: 360, NoAudio: true}})
	_, attrs = na.master()
	if c := attrs[0]["CODECS"]; strings.Contains(c, "mp4a") {
		t.Errorf("video-only item: CODECS %q names an audio codec", c)
	}
	// Each master request starts a new session; ?session= joins one.
	uris2, _ := e.master()
	if strings.Split(uris2[0], "/")[0] == session {
		t.Error("two master requests got the same session id")
	}
	joined := e.mustGet("/hls/" + e.item + "/master.m3u8?session=" + session)
	ju, _ := parseMaster(t, string(joined.body))
	if !strings.HasPrefix(ju[0], session+"/") {
		t.Errorf("?session=%s gave %s", session, ju[0])
	}
}

func TestPlaylistContentTypesAndCaching(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := e.mustGet("/hls/" + e.item + "/master.m3u8")
	uris, _ := parseMaster(t, string(m.body))
	p := e.mustGet("/hls/" + e.item + "/" + uris[0])
	for name, r := range map[string]response{"master": m, "media": p} {
		if ct := r.header.Get("Content-Type"); ct != "application/vnd.apple.mpegurl" {
			t.Errorf("%s playlist Content-Type %q", name, ct)
		}
		if r.header.Get("X-Wasmhls-Pod") != testPod {
			t.Errorf("%s playlist: X-Wasmhls-Pod %q", name, r.header.Get("X-Wasmhls-Pod"))
		}
		if r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s playlist: no CORS header", name)
		}
	}
	if cc := m.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("master Cache-Control %q, want no-store (it names a new session)", cc)
	}
	if cc := p.header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") || strings.Contains(cc, "immutable") {
		t.Errorf("media playlist Cache-Control %q, want a short max-age", cc)
	}
}
