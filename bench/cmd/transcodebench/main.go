// Command transcodebench runs one in-process transcode job (one variant, from
// segment 0 to the end) the way the server does and prints one JSON line:
// the variant it used (so the reference ffmpeg CLI run can use identical
// settings), frames, wall time, fps and the time until segment 0 was
// published. It runs as its own process so that benchreport can read its
// peak RSS from wait4, exactly as for the ffmpeg CLI.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/wasmhls/wasmhls/transcode"
)

type result struct {
	Variant      transcode.Variant `json:"variant"`
	Codecs       string            `json:"codecs"`
	Frames       int               `json:"frames"`
	Segments     int               `json:"segments"`
	WallS        float64           `json:"wall_s"`
	FPS          float64           `json:"fps"`
	FirstSegment float64           `json:"first_segment_s"`
}

func main() {
	in := flag.String("in", "", "input file")
	out := flag.String("out", "", "output directory")
	height := flag.Int("height", 720, "output height")
	vbr := flag.Int("video-bitrate", 2_800_000, "video bitrate, bits/s")
	abr := flag.Int("audio-bitrate", 128_000, "audio bitrate, bits/s")
	seg := flag.Int("segment-seconds", 6, "segment length")
	preset := flag.String("preset", "veryfast", "x264 preset")
	flag.Parse()
	if err := run(*in, *out, *height, *vbr, *abr, *seg, *preset); err != nil {
		fmt.Fprintln(os.Stderr, "transcodebench:", err)
		os.Exit(1)
	}
}

func run(in, out string, height, vbr, abr, seg int, preset string) error {
	start := time.Now()
	info, err := transcode.Probe(in)
	if err != nil {
		return err
	}
	v := transcode.NewVariant(info, fmt.Sprintf("%dp", height), height, vbr, abr, seg, preset)
	r := result{Variant: v, Codecs: v.Codecs()}
	spec := transcode.JobSpec{
		Input: in, Info: info, Variant: v, OutDir: out,
		Progress: func(s transcode.SegmentStats) {
			if r.Segments == 0 {
				r.FirstSegment = time.Since(start).Seconds()
			}
			r.Segments++
			r.Frames += s.Frames
		},
	}
	if err := transcode.Run(context.Background(), spec); err != nil {
		return err
	}
	r.WallS = time.Since(start).Seconds()
	r.FPS = float64(r.Frames) / r.WallS
	return json.NewEncoder(os.Stdout).Encode(r)
}
