package transcode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

// segInfo is what ffprobe reads back from one segment.
type segInfo struct {
	frames     int
	firstPTS   float64
	keyTimes   []float64
	audioFirst float64 // first audio packet PTS; NaN without audio
}

// checkSegments asserts, for segments first..first+len(files)-1, that each
// starts with an IDR frame at n × seg + TimelineOffset (± one frame) and has
// no other key frame, and returns what it read.
func checkSegments(t *testing.T, files []string, first int, fps float64) []segInfo {
	t.Helper()
	out := make([]segInfo, len(files))
	for i, f := range files {
		n := first + i
		fr := testmedia.FFprobeFrames(t, f)
		if len(fr) == 0 {
			t.Fatalf("segment %d has no video frames", n)
		}
		if !fr[0].KeyFrame || fr[0].PictType != "I" {
			t.Errorf("segment %d starts with %+v, want an IDR frame", n, fr[0])
		}
		want := float64(n*testSeg) + TimelineOffset.Seconds()
		if math.Abs(fr[0].PTSTime-want) > 1/fps+1e-6 {
			t.Errorf("segment %d first PTS %.4f, want %.4f ± 1 frame", n, fr[0].PTSTime, want)
		}
		s := segInfo{frames: len(fr), firstPTS: fr[0].PTSTime, audioFirst: math.NaN()}
		for _, x := range fr {
			if x.KeyFrame {
				s.keyTimes = append(s.keyTimes, x.PTSTime)
			}
		}
		if len(s.keyTimes) != 1 {
			t.Errorf("segment %d has key frames at %v, want only the first", n, s.keyTimes)
		}
		if ap := testmedia.FFprobePackets(t, f, "a:0"); len(ap) > 0 {
			s.audioFirst = ap[0].PTSTime
		}
		out[i] = s
	}
	return out
}

// decodesCleanly concatenates segments as an HLS client reads them and has
// the ffmpeg CLI decode the result.
func decodesCleanly(t *testing.T, files []string) {
	t.Helper()
	all := testmedia.Concat(t, filepath.Join(t.TempDir(), "all.ts"), files...)
	if msg := testmedia.DecodeErrors(t, all); msg != "" {
		t.Errorf("ffmpeg decoding the concatenated segments: %s", msg)
	}
}

func TestRunSegments(t *testing.T) {
	in, info := media(t, stdOpt)
	v := smallVariant(info)
	dir := t.TempDir()
	rec := runJob(t, in, info, v, dir, 0, nil)
	count := SegmentCount(info, testSeg)
	if count != 6 {
		t.Fatalf("SegmentCount = %d, want 6", count)
	}
	files := segFiles(t, dir, count)
	segs := checkSegments(t, files, 0, 25)
	total := 0
	for i, s := range segs {
		if rec.stats[i].Frames != s.frames {
			t.Errorf("segment %d: Progress says %d frames, ffprobe %d", i, rec.stats[i].Frames, s.frames)
		}
		if math.IsNaN(s.audioFirst) {
			t.Errorf("segment %d has no audio", i)
		}
		total += s.frames
	}
	if total != 300 {
		t.Errorf("%d frames in all, want 300", total)
	}
	if fmt.Sprint(rec.order) != "[0 1 2 3 4 5]" {
		t.Errorf("published in order %v", rec.order)
	}
	decodesCleanly(t, files)
	playsAsHLS(t, dir, info)

	// The stream is what the variant declares.
	_, streams := testmedia.FFprobeFormat(t, files[0])
	for _, s := range streams {
		switch s.CodecType {
		case "video":
			if s.Width != v.Width || s.Height != v.Height {
				t.Errorf("video %dx%d, want %dx%d", s.Width, s.Height, v.Width, v.Height)
			}
		case "audio":
			if s.CodecName != "aac" || s.SampleRate != 48000 || s.Channels != 2 {
				t.Errorf("audio %s %d Hz %d ch, want aac 48000 Hz stereo", s.CodecName, s.SampleRate, s.Channels)
			}
		}
	}
	if got := spsCodec(t, files[0]); !strings.HasPrefix(v.Codecs(), got) {
		t.Errorf("stream SPS says %s, Codecs() = %s", got, v.Codecs())
	}
}

// spsCodec reads profile, constraint flags and level from the first SPS NAL
// unit in an MPEG-TS file and formats them as avc1.PPCCLL.
func spsCodec(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// SPS payload bytes sit inside one TS packet right after the start code.
	for i := 0; i+7 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 && b[i+3]&0x1f == 7 {
			return fmt.Sprintf("avc1.%02X%02X%02X", b[i+4], b[i+5], b[i+6])
		}
	}
	t.Fatalf("no SPS in %s", file)
	return ""
}

func TestCodecsMatchEncoder(t *testing.T) {
	in, info := media(t, testmedia.Options{Seconds: 2, Width: 640, Height: 360})
	for _, preset := range []string{"ultrafast", "veryfast"} {
		t.Run(preset, func(t *testing.T) {
			v := NewVariant(info, "360p", 360, 500_000, 64_000, testSeg, preset)
			dir := t.TempDir()
			runJob(t, in, info, v, dir, 0, nil)
			if got := spsCodec(t, SegmentPath(dir, 0)); got+",mp4a.40.2" != v.Codecs() {
				t.Errorf("stream SPS says %s, Codecs() = %s", got, v.Codecs())
			}
		})
	}
}

func TestRestartAtSegment(t *testing.T) {
	in, info := media(t, stdOpt)
	v := smallVariant(info)
	full := t.TempDir()
	runJob(t, in, info, v, full, 0, nil)
	ref := checkSegments(t, segFiles(t, full, 6), 0, 25)
	for _, start := range []int{3, 5} {
		t.Run(fmt.Sprint(start), func(t *testing.T) {
			dir := t.TempDir()
			runJob(t, in, info, v, dir, start, nil)
			for n := 0; n < start; n++ {
				if _, err := os.Stat(SegmentPath(dir, n)); err == nil {
					t.Errorf("segment %d written by a job started at %d", n, start)
				}
			}
			var files []string
			for n := start; n < 6; n++ {
				files = append(files, SegmentPath(dir, n))
			}
			got := checkSegments(t, files, start, 25)
			for i, g := range got {
				r := ref[start+i]
				if g.frames != r.frames || g.firstPTS != r.firstPTS {
					t.Errorf("segment %d: restarted run has %d frames from %.4f, first run %d from %.4f",
						start+i, g.frames, g.firstPTS, r.frames, r.firstPTS)
				}
				if g.audioFirst != r.audioFirst {
					t.Errorf("segment %d: first audio packet at %.6f, first run %.6f", start+i, g.audioFirst, r.audioFirst)
				}
			}
			// Segments from both runs join as one stream: it decodes, and
			// timestamps never go back at the join (no discontinuity).
			mixed := append(segFiles(t, full, start), files...)
			decodesCleanly(t, mixed)
			all := testmedia.Concat(t, filepath.Join(t.TempDir(), "mixed.ts"), mixed...)
			for _, sel := range []string{"v:0", "a:0"} {
				ps := testmedia.FFprobePackets(t, all, sel)
				for i := 1; i < len(ps); i++ {
					if ps[i].DTSTime <= ps[i-1].DTSTime {
						t.Errorf("%s: DTS %.6f after %.6f at packet %d", sel, ps[i].DTSTime, ps[i-1].DTSTime, i)
						break
					}
				}
			}
		})
	}
}

func TestVariantsShareIDRTimes(t *testing.T) {
	in, info := media(t, stdOpt)
	a, b := t.TempDir(), t.TempDir()
	// Both variants at once, as the session layer runs them: jobs share no
	// state, and -race checks that.
	errs := make(chan error, 2)
	for dir, v := range map[string]Variant{
		a: NewVariant(info, "360p", 360, 700_000, 96_000, testSeg, "ultrafast"),
		b: smallVariant(info),
	} {
		go func() {
			errs <- Run(context.Background(), JobSpec{Input: in, Info: info, Variant: v, OutDir: dir})
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	sa := checkSegments(t, segFiles(t, a, 6), 0, 25)
	sb := checkSegments(t, segFiles(t, b, 6), 0, 25)
	for i := range sa {
		if fmt.Sprint(sa[i].keyTimes) != fmt.Sprint(sb[i].keyTimes) || sa[i].frames != sb[i].frames {
			t.Errorf("segment %d: key frames %v (%d frames) vs %v (%d frames)", i, sa[i].keyTimes, sa[i].frames, sb[i].keyTimes, sb[i].frames)
		}
	}
}

func TestNextSkipsExistingSegments(t *testing.T) {
	in, info := media(t, stdOpt)
	v := smallVariant(info)
	dir := t.TempDir()
	var asked []int
	// Segments 1, 2 and 4 "exist": Next moves past them, as the session
	// layer does for files already on disk.
	exists := map[int]bool{1: true, 2: true, 4: true}
	next := func(ctx context.Context, n int) (int, error) {
		asked = append(asked, n)
		for exists[n] {
			n++
		}
		return n, nil
	}
	rec := runJob(t, in, info, v, dir, 0, next)
	if fmt.Sprint(rec.order) != "[0 3 5]" {
		t.Fatalf("published %v, want [0 3 5]", rec.order)
	}
	if fmt.Sprint(asked) != "[0 1 4]" {
		t.Errorf("Next asked for %v, want [0 1 4]", asked)
	}
	for _, n := range []int{0, 3, 5} {
		checkSegments(t, []string{SegmentPath(dir, n)}, n, 25)
	}
	for n := range exists {
		if _, err := os.Stat(SegmentPath(dir, n)); err == nil {
			t.Errorf("segment %d was written", n)
		}
	}

	// Next ending the job: Run returns its error as is.
	err := Run(context.Background(), JobSpec{Input: in, Info: info, Variant: v, OutDir: t.TempDir(),
		Next: func(ctx context.Context, n int) (int, error) {
			if n == 2 {
				return 0, ErrDone
			}
			return n, nil
		}})
	if !errors.Is(err, ErrDone) {
		t.Errorf("Run with Next returning ErrDone = %v", err)
	}
}

func TestCommitVetoKeepsSegmentUnpublished(t *testing.T) {
	in, info := media(t, testmedia.Options{Seconds: 4, Width: 320, Height: 180})
	v := NewVariant(info, "180p", 180, 300_000, 64_000, testSeg, "ultrafast")
	dir := t.TempDir()
	lost := errors.New("lease lost")
	var sawTmp bool
	err := Run(context.Background(), JobSpec{Input: in, Info: info, Variant: v, OutDir: dir,
		Commit: func(ctx context.Context, n int, tmp string) error {
			if n == 1 {
				_, err := os.Stat(tmp)
				sawTmp = err == nil && strings.HasPrefix(tmp, SegmentPath(dir, 1)+".") && strings.HasSuffix(tmp, ".tmp")
				return lost
			}
			return nil
		}})
	if !errors.Is(err, lost) {
		t.Fatalf("Run = %v, want the Commit error", err)
	}
	if !sawTmp {
		t.Error("Commit did not see the complete n.ts.tmp")
	}
	if _, err := os.Stat(SegmentPath(dir, 0)); err != nil {
		t.Errorf("segment 0: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 1 {
		t.Errorf("files after a vetoed commit: %v, want only 0.ts", left)
	}
}

func TestBandwidthHolds(t *testing.T) {
	in, info := media(t, stdOpt)
	// A low target so the VBV really constrains the encoder.
	for _, v := range []Variant{
		NewVariant(info, "240p", 240, 150_000, 64_000, testSeg, "veryfast"),
		NewVariant(info, "360p", 360, 600_000, 128_000, testSeg, "veryfast"),
	} {
		dir := t.TempDir()
		runJob(t, in, info, v, dir, 0, nil)
		durs := SegmentDurations(info, testSeg)
		peak := 0.0
		for n, d := range durs {
			fi, err := os.Stat(SegmentPath(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			rate := float64(fi.Size()*8) / d
			peak = math.Max(peak, rate)
			if rate > float64(v.Bandwidth()) {
				t.Errorf("%s segment %d: %.0f b/s over BANDWIDTH %d", v.Name, n, rate, v.Bandwidth())
			}
		}
		t.Logf("%s: peak segment %.0f b/s, Bandwidth %d (%.2f×), AverageBandwidth %d", v.Name, peak, v.Bandwidth(), float64(v.Bandwidth())/peak, v.AverageBandwidth())
	}
}

func TestInputs(t *testing.T) {
	cases := []struct {
		name  string
		opt   testmedia.Options
		audio bool
	}{
		{"no audio", testmedia.Options{Seconds: 6, Width: 320, Height: 180, NoAudio: true}, false},
		{"853x480", testmedia.Options{Seconds: 6, Width: 853, Height: 480}, true},
		{"vfr", testmedia.Options{Seconds: 6, Width: 320, Height: 180, VFR: true}, true},
		{"start time", testmedia.Options{Seconds: 6, Width: 320, Height: 180, StartTime: 3.5}, true},
		{"mpegts start time", testmedia.Options{Seconds: 6, Width: 320, Height: 180, Container: "ts"}, true},
		{"matroska 48k", testmedia.Options{Seconds: 6, Width: 320, Height: 180, Container: "mkv", SampleRate: 48000}, true},
		{"audio ends early", testmedia.Options{Seconds: 8, Width: 320, Height: 180, AudioSeconds: 2.5}, true},
		{"audio starts late", testmedia.Options{Seconds: 4, Width: 320, Height: 180, AudioDelay: 0.5}, true},
		{"shorter than a segment", testmedia.Options{Seconds: 1.5, Width: 320, Height: 180}, true},
		{"short tail folded into the last segment", testmedia.Options{Seconds: 4.8, Width: 320, Height: 180}, true},
		{"short gop", testmedia.Options{Seconds: 6, Width: 320, Height: 180, GOP: 12, FPS: 30}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, info := media(t, c.opt)
			v := NewVariant(info, "180p", 180, 300_000, 64_000, testSeg, "ultrafast")
			if (v.AudioBitrate > 0) != c.audio {
				t.Fatalf("variant audio bitrate %d, audio expected %v", v.AudioBitrate, c.audio)
			}
			dir := t.TempDir()
			runJob(t, in, info, v, dir, 0, nil)
			count := SegmentCount(info, testSeg)
			files := segFiles(t, dir, count)
			if all, _ := filepath.Glob(filepath.Join(dir, "*.ts")); len(all) != count {
				t.Errorf("%d segment files, SegmentCount says %d", len(all), count)
			}
			segs := checkSegments(t, files, 0, info.Video.FPS)
			for i, s := range segs {
				if c.opt.AudioSeconds > 0 && float64(i*testSeg) >= c.opt.AudioSeconds {
					continue // no audio left to put in this segment
				}
				if math.IsNaN(s.audioFirst) == c.audio {
					t.Errorf("segment %d: audio present %v, want %v", i, !math.IsNaN(s.audioFirst), c.audio)
				}
			}
			// Audio starts at the item start on the 1024-sample grid (the
			// first packet is the encoder's priming frame): trimmed when the
			// source audio starts earlier, padded when it starts later.
			if want := TimelineOffset.Seconds() - 1024.0/48000; c.audio && math.Abs(segs[0].audioFirst-want) > 0.0005 {
				t.Errorf("first audio packet at %.6f, want %.6f", segs[0].audioFirst, want)
			}
			decodesCleanly(t, files)
			playsAsHLS(t, dir, info)
			// A restarted job reproduces the boundaries on this input too.
			rdir := t.TempDir()
			runJob(t, in, info, v, rdir, count-1, nil)
			last := checkSegments(t, []string{SegmentPath(rdir, count-1)}, count-1, info.Video.FPS)
			if last[0].frames != segs[count-1].frames || last[0].firstPTS != segs[count-1].firstPTS {
				t.Errorf("restart at %d: %d frames from %.4f, first run %d from %.4f", count-1,
					last[0].frames, last[0].firstPTS, segs[count-1].frames, segs[count-1].firstPTS)
			}
		})
	}
}

func TestCorruptInput(t *testing.T) {
	dir := t.TempDir()
	good := testmedia.Generate(t, dir, testmedia.Options{Seconds: 2})
	goodTS := testmedia.Generate(t, dir, testmedia.Options{Seconds: 4, Container: "ts"})
	cases := map[string]string{
		"garbage":          testmedia.Garbage(t, dir, "garbage.mp4", 64<<10),
		"truncated mp4":    testmedia.Truncated(t, dir, good, 0.5),
		"empty":            testmedia.Garbage(t, dir, "empty.mkv", 0),
		"missing":          filepath.Join(dir, "nope.mp4"),
		"text":             writeFile(t, dir, "notes.mp4", "this is not a video\n"),
		"truncated header": testmedia.Truncated(t, dir, goodTS, 0.002),
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Probe(path)
			if err == nil {
				t.Fatalf("Probe(%s) succeeded", name)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("Probe error %q does not name the file", err)
			}
			v := NewVariant(infoOf(320, 180, true, 2), "180p", 180, 300_000, 64_000, testSeg, "ultrafast")
			err = Run(context.Background(), JobSpec{Input: path, Variant: v, OutDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("Run = %v, want an error naming the file", err)
			}
		})
	}
	// A transport stream cut in the middle still gives decodable segments
	// for what is there, or a clear error; never a crash.
	cut := testmedia.Truncated(t, dir, goodTS, 0.6)
	info, err := Probe(cut)
	if err != nil {
		t.Logf("Probe of a cut stream: %v", err)
		return
	}
	out := t.TempDir()
	v := NewVariant(info, "180p", 180, 300_000, 64_000, testSeg, "ultrafast")
	if err := Run(context.Background(), JobSpec{Input: cut, Info: info, Variant: v, OutDir: out}); err != nil {
		t.Logf("Run of a cut stream: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.ts"))
	if len(files) == 0 {
		t.Fatalf("no segment from a stream cut at 60%%")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two jobs of the same variant share one segment directory (two viewers of
// one item) and produce the same segments at the same time: every published
// segment must still be whole.
func TestConcurrentWritersShareDirectory(t *testing.T) {
	in, info := media(t, stdOpt)
	v := smallVariant(info)
	dir := t.TempDir()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			errs <- Run(context.Background(), JobSpec{Input: in, Info: info, Variant: v, OutDir: dir})
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	files := segFiles(t, dir, 6)
	checkSegments(t, files, 0, 25)
	decodesCleanly(t, files)
}

// playsAsHLS writes a VOD playlist over the segments with SegmentDurations
// as EXTINF, has the ffmpeg CLI play it as an HLS client (any "Packet
// corrupt" at a segment join or decode error fails), and checks that the
// EXTINF values add up to the real duration of the output within one frame.
func playsAsHLS(t *testing.T, dir string, info *MediaInfo) {
	t.Helper()
	durs := SegmentDurations(info, testSeg)
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n")
	sum := 0.0
	for n, d := range durs {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%d.ts\n", d, n)
		sum += d
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	pl := writeFile(t, dir, "index.m3u8", b.String())
	if msg := testmedia.DecodeErrors(t, pl); msg != "" {
		t.Errorf("ffmpeg playing the HLS playlist: %s", msg)
	}
	fr := testmedia.FFprobeFrames(t, testmedia.Concat(t, filepath.Join(t.TempDir(), "all.ts"), segFilesN(dir, len(durs))...))
	frame := 1 / info.Video.FPS
	real := fr[len(fr)-1].PTSTime - fr[0].PTSTime + frame
	if math.Abs(sum-real) > frame+1e-6 {
		t.Errorf("EXTINF sum %.4f s, real video duration %.4f s: more than one frame apart", sum, real)
	}
}

func segFilesN(dir string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, SegmentPath(dir, i))
	}
	return out
}
