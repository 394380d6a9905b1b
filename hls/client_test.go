package hls

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// TestFFmpegPlaysTheWholeStream uses libavformat's HLS demuxer (the ffmpeg
// CLI) as a real client: it reads master.m3u8 over HTTP, picks a variant,
// fetches every segment and decodes them; there must be no error and the
// decoded duration must be the item's.
func TestFFmpegPlaysTheWholeStream(t *testing.T) {
	e := newEnv(t, envOptions{rungs: testRungs})
	f, _ := testmedia.FFprobeFormat(t, e.media)
	for _, program := range []string{"0", "1"} { // both variants
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-stats",
			"-i", e.srv.URL+"/hls/"+e.item+"/master.m3u8",
			"-map", "0:p:"+program+":v", "-map", "0:p:"+program+":a", "-f", "null", "-")
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		text := out.String()
		if err != nil {
			t.Fatalf("variant %s: ffmpeg: %v\n%s", program, err, text)
		}
		if errs := regexp.MustCompile(`(?m)^.*(error|corrupt|Invalid|non-monoton|discontinuity).*$`).FindAllString(text, -1); len(errs) > 0 {
			t.Errorf("variant %s: ffmpeg reported problems:\n%s", program, text)
		}
		// -stats prints time=HH:MM:SS.cc for the last frame decoded.
		m := regexp.MustCompile(`time=(\d+):(\d+):(\d+\.\d+)`).FindAllStringSubmatch(text, -1)
		if len(m) == 0 {
			t.Fatalf("variant %s: no progress in ffmpeg's output:\n%s", program, text)
		}
		last := m[len(m)-1]
		h, _ := strconv.Atoi(last[1])
		mi, _ := strconv.Atoi(last[2])
		s, _ := strconv.ParseFloat(last[3], 64)
		got := float64(h*3600+mi*60) + s
		if math.Abs(got-f.Duration) > 0.1 {
			t.Errorf("variant %s: decoded %.2f s, the item is %.2f s", program, got, f.Duration)
		}
	}
}

// Every segment starts with an IDR frame at n × segment_seconds on the
// item's timeline, at the same timestamp in every variant.
func TestEverySegmentStartsWithIDRAtTheSameTimeInEveryVariant(t *testing.T) {
	e := newEnv(t, envOptions{rungs: testRungs})
	uris, _ := e.master()
	dir := t.TempDir()
	starts := make([][]float64, len(uris))
	for vi, u := range uris {
		vp := "/hls/" + e.item + "/" + strings.TrimSuffix(u, "index.m3u8")
		p := parseMedia(t, string(e.mustGet(vp+"index.m3u8").body))
		for n, seg := range p.uris {
			file := filepath.Join(dir, fmt.Sprintf("v%d-%d.ts", vi, n))
			if err := os.WriteFile(file, e.mustGet(vp+seg).body, 0o644); err != nil {
				t.Fatal(err)
			}
			frames := testmedia.FFprobeFrames(t, file)
			var first *testmedia.Frame
			for i := range frames {
				if frames[i].MediaType == "video" {
					first = &frames[i]
					break
				}
			}
			if first == nil || !first.KeyFrame || first.PictType != "I" {
				t.Fatalf("%s segment %d does not start with an IDR frame: %+v", u, n, first)
			}
			starts[vi] = append(starts[vi], first.PTSTime)
		}
	}
	const frame = 1.0 / 25
	for vi := range starts {
		for n, s := range starts[vi] {
			if d := s - starts[0][0] - float64(2*n); math.Abs(d) > frame/2 {
				t.Errorf("variant %d segment %d starts at %.4f, want %.4f (segment 0 + %d s)", vi, n, s, starts[0][0]+float64(2*n), 2*n)
			}
			if vi > 0 && math.Abs(s-starts[0][n]) > 1e-6 {
				t.Errorf("segment %d starts at %.4f in variant %d but %.4f in variant 0", n, s, vi, starts[0][n])
			}
		}
	}
}
