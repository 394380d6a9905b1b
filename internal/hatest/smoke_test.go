package hatest

import (
	"context"
	"math"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

// One pod on the default store, played through the front in real time:
// the harness itself works end to end.
func TestSmokeOnePodThroughFront(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a wasmhls process and plays 12 s in real time")
	}
	if _, err := Binary(); err != nil {
		t.Skipf("cmd/wasmhls does not build yet, so there is no server to run:\n%v", err)
	}
	c := Start(t, Options{Pods: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	items, err := c.Items(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("items = %+v, want the one generated clip", items)
	}
	res, err := c.Play(ctx, PlayOptions{Item: items[0].ID, Decode: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Report())

	want := int(math.Ceil(items[0].DurationS / 2))
	if len(res.Segments) != want {
		t.Fatalf("%d segments, want %d for %.2f s in 2 s segments", len(res.Segments), want, items[0].DurationS)
	}
	var extinf float64
	for _, s := range res.Segments {
		extinf += s.EXTINF
		if s.Pod != "pod-0" || s.Backend != "pod-0" {
			t.Errorf("segment %d served by %q via %q, want pod-0", s.N, s.Pod, s.Backend)
		}
		if s.Frames == 0 || s.DecodeErr != "" {
			t.Errorf("segment %d: %d frames, decode errors %q", s.N, s.Frames, s.DecodeErr)
		}
	}
	if math.Abs(extinf-items[0].DurationS) > 0.1 {
		t.Errorf("EXTINF sum %.3f, item duration %.3f", extinf, items[0].DurationS)
	}
	if len(res.Gaps) != 0 {
		t.Errorf("segments do not join: %+v", res.Gaps)
	}
	if n, err := c.Pods[0].Metric(ctx, "wasmhls_segments_total", nil); err != nil || n < float64(want) {
		t.Errorf("wasmhls_segments_total = %v (%v), want ≥ %d", n, err, want)
	}
	if got := c.Front.Served()["pod-0"]; got < len(res.Segments) {
		t.Errorf("front forwarded %d requests to pod-0", got)
	}
}

func TestSumMetric(t *testing.T) {
	text := `# HELP wasmhls_takeovers_total x
# TYPE wasmhls_takeovers_total counter
wasmhls_takeovers_total{reason="expired"} 2
wasmhls_takeovers_total{reason="released"} 3
wasmhls_takeovers_total{reason="we\"ird,x"} 1
wasmhls_fenced_total 4
`
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"wasmhls_takeovers_total", nil, 6},
		{"wasmhls_takeovers_total", map[string]string{"reason": "released"}, 3},
		{"wasmhls_takeovers_total", map[string]string{"reason": `we"ird,x`}, 1},
		{"wasmhls_fenced_total", nil, 4},
		{"wasmhls_missing", nil, 0},
	} {
		got, err := sumMetric(text, c.name, c.labels)
		if err != nil || got != c.want {
			t.Errorf("sumMetric(%s, %v) = %v, %v; want %v", c.name, c.labels, got, err, c.want)
		}
	}
}

func TestParseMediaPlaylist(t *testing.T) {
	segs, err := parseMediaPlaylist("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n0.ts\n#EXTINF:1.5,\n1.ts\n#EXT-X-ENDLIST\n")
	if err != nil || len(segs) != 2 || segs[1].uri != "1.ts" || segs[1].dur != 1.5 {
		t.Fatalf("parse = %+v, %v", segs, err)
	}
	for _, bad := range []string{
		"#EXTM3U\n#EXTINF:2,\n0.ts\n",     // no ENDLIST: not VOD
		"#EXTM3U\n0.ts\n#EXT-X-ENDLIST\n", // no EXTINF
		"#EXTM3U\n#EXTINF:x,\n0.ts\n#EXT-X-ENDLIST\n",
	} {
		if _, err := parseMediaPlaylist(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}
