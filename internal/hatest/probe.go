package hatest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
)

// probeSegment fills the video timeline of rec from its saved file with
// ffprobe: first and last packet PTS, frame duration, frame count.
func probeSegment(ctx context.Context, rec *SegmentRecord) error {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", rec.Path).Output()
	if err != nil {
		return fmt.Errorf("hatest: ffprobe segment %d (%s): %w%s", rec.N, rec.Path, err, stderrOf(err))
	}
	first, last := 0.0, 0.0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		pts, dur, _ := strings.Cut(strings.TrimSpace(sc.Text()), ",")
		p, err := strconv.ParseFloat(pts, 64)
		if err != nil {
			continue // a packet without PTS
		}
		if rec.Frames == 0 || p < first {
			first = p
		}
		if rec.Frames == 0 || p > last {
			last = p
		}
		if d, err := strconv.ParseFloat(strings.TrimSuffix(dur, ","), 64); err == nil && d > 0 {
			rec.FrameDur = d
		}
		rec.Frames++
	}
	if rec.Frames == 0 {
		return fmt.Errorf("hatest: segment %d (%s) has no video packets", rec.N, rec.Path)
	}
	rec.FirstPTS, rec.LastPTS = first, last
	if rec.FrameDur == 0 && rec.Frames > 1 {
		// MPEG-TS packets often carry no duration: a constant-rate
		// segment's frames are evenly spaced between first and last.
		rec.FrameDur = (last - first) / float64(rec.Frames-1)
	}
	return nil
}

// decodeErrors decodes a file with ffmpeg and returns what it reported at
// level error ("" when clean).
func decodeErrors(ctx context.Context, path string) string {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", path, "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stderr.String() + "\n" + err.Error())
	}
	return strings.TrimSpace(stderr.String())
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// FFmpegResult is what the ffmpeg CLI, as an HLS client, made of a stream.
type FFmpegResult struct {
	Errors   string  // ffmpeg's messages at level error ("" when clean)
	Duration float64 // seconds of media decoded (last out_time)
	Frames   int     // video frames decoded
}

// FFmpegRead has the ffmpeg CLI (libavformat's HLS demuxer) read and decode
// the whole master playlist of item through the front, as a player would.
// Start it in a goroutine to kill a pod while it runs.
func (c *Cluster) FFmpegRead(ctx context.Context, item string) (FFmpegResult, error) {
	u := c.Front.URL + "/hls/" + url.PathEscape(item) + "/master.m3u8"
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error",
		"-i", u, "-map", "0:v:0", "-map", "0:a?", "-f", "null", "-", "-progress", "pipe:1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	res := FFmpegResult{Errors: strings.TrimSpace(stderr.String())}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "out_time_us":
			if us, err := strconv.ParseInt(v, 10, 64); err == nil {
				res.Duration = float64(us) / 1e6
			}
		case "frame":
			if n, err := strconv.Atoi(v); err == nil {
				res.Frames = n
			}
		}
	}
	if runErr != nil {
		return res, fmt.Errorf("hatest: ffmpeg reading %s: %w: %s", u, runErr, res.Errors)
	}
	return res, nil
}
