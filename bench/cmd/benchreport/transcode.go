package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The reference workload of the issue: a 60 s 1080p30 clip to 720p.
const (
	clipSeconds  = 60
	benchHeight  = 720
	benchVBR     = 2_800_000
	benchABR     = 128_000
	benchSegment = 6
	benchPreset  = "veryfast"
	clipName     = "clip1080p30.mp4"
)

// clip makes (once) the 60 s 1080p30 testsrc2 + sine source.
func (b *bench) clip() (string, error) {
	dir := filepath.Join(b.work, "media")
	path := filepath.Join(dir, clipName)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := path + ".tmp.mp4"
	_, err := runMeasured(context.Background(), "ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(clipSeconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k", "-shortest", tmp)
	if err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// inprocResult is transcodebench's JSON line.
type inprocResult struct {
	Variant struct {
		Width, Height int
		VideoBitrate  int `json:"video_bitrate"`
		MaxRate       int `json:"max_rate"`
		BufSize       int `json:"buf_size"`
		AudioBitrate  int `json:"audio_bitrate"`
		FPSNum        int `json:"fps_num"`
		FPSDen        int `json:"fps_den"`
	} `json:"variant"`
	Codecs       string  `json:"codecs"`
	Frames       int     `json:"frames"`
	WallS        float64 `json:"wall_s"`
	FPS          float64 `json:"fps"`
	FirstSegment float64 `json:"first_segment_s"`
}

var levelRe = regexp.MustCompile(`avc1\.[0-9a-fA-F]{4}([0-9a-fA-F]{2})`)

func (b *bench) transcode() (string, error) {
	ctx := context.Background()
	clip, err := b.clip()
	if err != nil {
		return "", fmt.Errorf("make clip: %w", err)
	}
	tb := filepath.Join(b.work, "transcodebench")
	if _, err := runMeasured(ctx, "go", "build", "-o", tb, "./bench/cmd/transcodebench"); err != nil {
		return "", err
	}
	var inFPS, inRSS, inFirst, cliFPS, cliRSS, cliFirst []float64
	var frames int
	for i := 0; i < b.runs; i++ {
		// In-process job.
		out := filepath.Join(b.work, "inproc")
		os.RemoveAll(out)
		m, err := runMeasured(ctx, tb, "-in", clip, "-out", out, "-height", strconv.Itoa(benchHeight),
			"-video-bitrate", strconv.Itoa(benchVBR), "-audio-bitrate", strconv.Itoa(benchABR),
			"-segment-seconds", strconv.Itoa(benchSegment), "-preset", benchPreset)
		if err != nil {
			return "", err
		}
		var r inprocResult
		if err := json.Unmarshal([]byte(m.stdout), &r); err != nil {
			return "", fmt.Errorf("transcodebench output %q: %w", m.stdout, err)
		}
		frames = r.Frames
		inFPS = append(inFPS, r.FPS)
		inFirst = append(inFirst, r.FirstSegment)
		inRSS = append(inRSS, float64(m.maxRSS))

		// The ffmpeg CLI with identical settings.
		fps, first, rss, err := b.cliRun(ctx, clip, r)
		if err != nil {
			return "", err
		}
		cliFPS = append(cliFPS, fps)
		cliFirst = append(cliFirst, first)
		cliRSS = append(cliRSS, rss)
	}
	b.cliFirstSegment = median(cliFirst)
	mib := func(x float64) string { return fmt.Sprintf("%.1f MiB", x/(1<<20)) }
	var sb strings.Builder
	fmt.Fprintf(&sb, "## Transcoding (issue: single-host server)\n\n"+
		"Workload: %d s of 1080p30 testsrc2 + 440 Hz sine → %dp, libx264 `%s`, %d kb/s video with the variant's maxrate/bufsize, "+
		"AAC %d kb/s 48 kHz stereo, %d s MPEG-TS segments, IDR forced at every boundary; %d frames. "+
		"Reference: the ffmpeg CLI with the same settings (`-f segment`). wasmhls: `bench/cmd/transcodebench` "+
		"(the server's `transcode.Run`, one job, its own process). Peak RSS is ru_maxrss of each process.\n\n",
		clipSeconds, benchHeight, benchPreset, benchVBR/1000, benchABR/1000, benchSegment, frames)
	sb.WriteString("| figure | wasmhls | ffmpeg CLI | ratio | goal |\n| --- | --- | --- | --- | --- |\n")
	fmt.Fprintf(&sb, "| throughput (frames/s) | %.1f | %.1f | %.2f× | ≥ 1.0× |\n", median(inFPS), median(cliFPS), median(inFPS)/median(cliFPS))
	fmt.Fprintf(&sb, "| first segment written (s, from process start) | %.2f | %.2f | %.2f× | — |\n", median(inFirst), median(cliFirst), median(inFirst)/median(cliFirst))
	fmt.Fprintf(&sb, "| peak RSS of one job | %s | %s | %.2f× | ≤ 1.1× |\n", mib(median(inRSS)), mib(median(cliRSS)), median(inRSS)/median(cliRSS))
	fmt.Fprintf(&sb, "\nRaw runs — wasmhls fps %s, CLI fps %s; wasmhls RSS %s, CLI RSS %s.\n", fmtList(inFPS, "%.1f"), fmtList(cliFPS, "%.1f"),
		fmtList(scale(inRSS, 1.0/(1<<20)), "%.0fMiB"), fmtList(scale(cliRSS, 1.0/(1<<20)), "%.0fMiB"))
	return sb.String(), nil
}

// cliRun runs the reference transcode and reports fps, the time until its
// first segment was complete (segment 1 opened, or the process ended) and
// peak RSS.
func (b *bench) cliRun(ctx context.Context, clip string, r inprocResult) (fps, first, rss float64, err error) {
	out := filepath.Join(b.work, "cli")
	os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, 0, 0, err
	}
	level := "4.0"
	if m := levelRe.FindStringSubmatch(r.Codecs); m != nil {
		if n, err := strconv.ParseInt(m[1], 16, 32); err == nil {
			level = fmt.Sprintf("%d.%d", n/10, n%10)
		}
	}
	v := r.Variant
	args := []string{"-v", "error", "-y", "-i", clip,
		"-map", "0:v:0", "-map", "0:a:0?",
		"-vf", fmt.Sprintf("scale=%d:%d", v.Width, v.Height), "-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-preset", benchPreset, "-profile:v", "high", "-level", level,
		"-b:v", strconv.Itoa(v.VideoBitrate), "-maxrate", strconv.Itoa(v.MaxRate), "-bufsize", strconv.Itoa(v.BufSize),
		"-g", "1000", "-x264-params", "scenecut=0", "-forced-idr", "1",
		"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%d)", benchSegment),
		"-c:a", "aac", "-ar", "48000", "-ac", "2", "-b:a", strconv.Itoa(v.AudioBitrate),
		"-f", "segment", "-segment_time", strconv.Itoa(benchSegment), "-segment_format", "mpegts",
		filepath.Join(out, "%d.ts")}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var errb strings.Builder
	cmd.Stderr = &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Segment 0 is complete when the muxer opens segment 1.
	firstAt := time.Duration(0)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var werr error
wait:
	for {
		select {
		case werr = <-done:
			break wait
		case <-tick.C:
			if firstAt == 0 {
				if _, err := os.Stat(filepath.Join(out, "1.ts")); err == nil {
					firstAt = time.Since(start)
				}
			}
		}
	}
	wall := time.Since(start)
	if werr != nil {
		return 0, 0, 0, fmt.Errorf("ffmpeg: %w: %s", werr, lastLines(errb.String(), 5))
	}
	if firstAt == 0 {
		firstAt = wall
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	frames := r.Frames
	return float64(frames) / wall.Seconds(), firstAt.Seconds(), float64(ru.Maxrss * 1024), nil
}

func fmtList(xs []float64, f string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(parts, ", ")
}

func scale(xs []float64, k float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x * k
	}
	return out
}

// fetch GETs a URL and returns the body (status 200 required).
func fetch(url string) ([]byte, time.Duration, error) {
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != 200 {
		return nil, 0, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return body, time.Since(start), nil
}
