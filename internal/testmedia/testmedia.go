// Package testmedia makes small media files for tests with the ffmpeg CLI
// (testsrc2 + sine) and reads results back with ffprobe. Tests in every
// package use it, so generation is cached: a file for a given set of options
// is made once per machine (under the OS temp directory, written atomically)
// and each test gets its own hard link or copy in the directory it names.
package testmedia

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Options describe the media to generate. The zero value gives 4 s of
// 320x180 at 25 fps, H.264 + AAC 44.1 kHz mono, in MP4.
type Options struct {
	Seconds float64 // duration; default 4
	Width   int     // default 320
	Height  int     // default 180
	FPS     int     // default 25
	NoAudio bool    // video only
	// VFR drops every fifth frame, so frame durations vary (avg_frame_rate
	// differs from r_frame_rate).
	VFR bool
	// StartTime shifts every timestamp (ffmpeg -output_ts_offset), giving a
	// non-zero start time.
	StartTime float64
	Codec     string // video encoder; default libx264
	// Container is the file extension / muxer: mp4 (default), mkv or ts.
	Container string
	// GOP is the keyframe interval in frames; 0 lets the encoder choose.
	GOP int
	// SampleRate of the sine; default 44100 (so the transcoder must resample).
	SampleRate int
	// AudioSeconds makes the audio shorter than the video when set.
	AudioSeconds float64
	// AudioDelay starts the audio this many seconds after the video
	// (timestamps, not silence).
	AudioDelay float64
	// PixFmt of the encoded video; default yuv420p, or yuv444p when the
	// size is odd (4:2:0 cannot carry an odd width or height).
	PixFmt string
}

func (o Options) withDefaults() Options {
	if o.Seconds == 0 {
		o.Seconds = 4
	}
	if o.Width == 0 {
		o.Width = 320
	}
	if o.Height == 0 {
		o.Height = 180
	}
	if o.FPS == 0 {
		o.FPS = 25
	}
	if o.Codec == "" {
		o.Codec = "libx264"
	}
	if o.Container == "" {
		o.Container = "mp4"
	}
	if o.SampleRate == 0 {
		o.SampleRate = 44100
	}
	if o.PixFmt == "" {
		o.PixFmt = "yuv420p"
		if o.Width%2 != 0 || o.Height%2 != 0 {
			o.PixFmt = "yuv444p"
		}
	}
	return o
}

func (o Options) args(out string) []string {
	a := []string{"-hide_banner", "-v", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width+o.Width%2, o.Height+o.Height%2, o.FPS)}
	if !o.NoAudio {
		sine := fmt.Sprintf("sine=frequency=440:sample_rate=%d", o.SampleRate)
		if o.AudioSeconds > 0 {
			sine += ":duration=" + strconv.FormatFloat(o.AudioSeconds, 'f', -1, 64)
		}
		if o.AudioDelay != 0 {
			a = append(a, "-itsoffset", strconv.FormatFloat(o.AudioDelay, 'f', -1, 64))
		}
		a = append(a, "-f", "lavfi", "-i", sine)
	}
	a = append(a, "-t", strconv.FormatFloat(o.Seconds, 'f', -1, 64))
	// testsrc2 and crop round sizes to even in 4:2:0, so an odd size is
	// cut from the next even one after conversion to 4:4:4.
	var vf []string
	if o.Width%2 != 0 || o.Height%2 != 0 {
		vf = append(vf, "format=yuv444p", fmt.Sprintf("crop=%d:%d:0:0", o.Width, o.Height))
	}
	if o.VFR {
		vf = append(vf, `select='not(eq(mod(n\,5)\,2))'`)
	}
	if len(vf) > 0 {
		a = append(a, "-vf", strings.Join(vf, ","))
	}
	if o.VFR {
		a = append(a, "-vsync", "vfr")
	}
	a = append(a, "-c:v", o.Codec)
	if o.Codec == "libx264" {
		a = append(a, "-preset", "ultrafast")
	}
	a = append(a, "-pix_fmt", o.PixFmt)
	if o.GOP > 0 {
		a = append(a, "-g", strconv.Itoa(o.GOP))
	}
	if !o.NoAudio {
		a = append(a, "-c:a", "aac", "-b:a", "64k")
		if o.AudioSeconds == 0 {
			a = append(a, "-shortest")
		}
	}
	if o.StartTime != 0 {
		a = append(a, "-output_ts_offset", strconv.FormatFloat(o.StartTime, 'f', -1, 64))
	}
	if o.Container == "ts" {
		a = append(a, "-f", "mpegts")
	}
	return append(a, out)
}

// name is a readable file name unique to the options.
func (o Options) name() string {
	sum := sha256.Sum256([]byte(strings.Join(o.args("OUT"), "\x00")))
	parts := []string{fmt.Sprintf("%dx%d", o.Width, o.Height), fmt.Sprintf("%dfps", o.FPS),
		strconv.FormatFloat(o.Seconds, 'f', -1, 64) + "s"}
	if o.NoAudio {
		parts = append(parts, "noaudio")
	}
	if o.VFR {
		parts = append(parts, "vfr")
	}
	if o.AudioDelay != 0 {
		parts = append(parts, "adelay"+strconv.FormatFloat(o.AudioDelay, 'f', -1, 64)+"s")
	}
	if o.AudioSeconds != 0 {
		parts = append(parts, "audio"+strconv.FormatFloat(o.AudioSeconds, 'f', -1, 64)+"s")
	}
	if o.StartTime != 0 {
		parts = append(parts, "start"+strconv.FormatFloat(o.StartTime, 'f', -1, 64))
	}
	return strings.Join(parts, "-") + "-" + hex.EncodeToString(sum[:6]) + "." + o.Container
}

var (
	mu       sync.Mutex
	inflight = map[string]*sync.Mutex{} // one generation per name at a time in this process
)

// CacheDir is where generated files are kept between tests and runs.
func CacheDir() string {
	if d := os.Getenv("TESTMEDIA_CACHE_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "wasmhls-testmedia")
}

// Generate returns the path of a media file described by opt, placed in dir
// (a hard link to the cached file when possible, a copy otherwise). The test
// fails if ffmpeg cannot make it.
func Generate(t testing.TB, dir string, opt Options) string {
	t.Helper()
	opt = opt.withDefaults()
	name := opt.name()
	cached, err := generateCached(opt, name)
	if err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	dst := filepath.Join(dir, name)
	if _, err := os.Stat(dst); err == nil {
		return dst
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	if err := os.Link(cached, dst); err != nil {
		if err := copyFile(cached, dst); err != nil {
			t.Fatalf("testmedia: copy %s: %v", cached, err)
		}
	}
	return dst
}

func generateCached(opt Options, name string) (string, error) {
	mu.Lock()
	m, ok := inflight[name]
	if !ok {
		m = &sync.Mutex{}
		inflight[name] = m
	}
	mu.Unlock()
	m.Lock()
	defer m.Unlock()

	dir := CacheDir()
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Written under a unique name then renamed, so a concurrent test binary
	// never sees a partial file.
	tmp, err := os.CreateTemp(dir, "gen-*."+opt.Container)
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", opt.args(tmp.Name())...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(opt.args(tmp.Name()), " "), err, stderr.String())
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Truncated writes the first fraction (0..1) of src to dir and returns its
// path: a file whose header may parse but whose data ends abruptly.
func Truncated(t testing.TB, dir, src string, fraction float64) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	dst := filepath.Join(dir, "truncated-"+filepath.Base(src))
	if err := os.WriteFile(dst, b[:int(float64(len(b))*fraction)], 0o644); err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	return dst
}

// Garbage writes n deterministic pseudo-random bytes to dir/name.
func Garbage(t testing.TB, dir, name string, n int) string {
	t.Helper()
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	return dst
}
