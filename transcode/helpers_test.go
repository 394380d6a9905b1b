package transcode

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

const testSeg = 2

// std is the reference input of most tests: 12 s of testsrc2 + sine at
// 640x360, 25 fps.
var stdOpt = testmedia.Options{Seconds: 12, Width: 640, Height: 360, FPS: 25}

func media(t *testing.T, opt testmedia.Options) (string, *MediaInfo) {
	t.Helper()
	p := testmedia.Generate(t, t.TempDir(), opt)
	info, err := Probe(p)
	if err != nil {
		t.Fatalf("Probe(%s): %v", p, err)
	}
	return p, info
}

func smallVariant(info *MediaInfo) Variant {
	return NewVariant(info, "240p", 240, 400_000, 64_000, testSeg, "ultrafast")
}

// recorder is a JobSpec.Progress that keeps the stats.
type recorder struct {
	mu    sync.Mutex
	stats map[int]SegmentStats
	order []int
}

func (r *recorder) progress(s SegmentStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stats == nil {
		r.stats = map[int]SegmentStats{}
	}
	r.stats[s.N] = s
	r.order = append(r.order, s.N)
}

func runJob(t *testing.T, in string, info *MediaInfo, v Variant, dir string, start int, next func(context.Context, int) (int, error)) *recorder {
	t.Helper()
	rec := &recorder{}
	err := Run(context.Background(), JobSpec{Input: in, Info: info, Variant: v, OutDir: dir, Start: start, Next: next, Progress: rec.progress})
	if err != nil {
		t.Fatalf("Run(start %d): %v", start, err)
	}
	return rec
}

func segFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		p := SegmentPath(dir, i)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		out = append(out, p)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) > 0 {
		t.Fatalf("leftover temporary files: %v", tmps)
	}
	return out
}
