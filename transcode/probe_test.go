package transcode

import (
	"math"
	"testing"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

func TestProbe(t *testing.T) {
	cases := []struct {
		name      string
		opt       testmedia.Options
		fps       float64
		startTime float64
		audio     bool
	}{
		{"mp4", testmedia.Options{Seconds: 3, Width: 640, Height: 360}, 25, 0, true},
		{"no audio 30fps", testmedia.Options{Seconds: 3, FPS: 30, NoAudio: true}, 30, 0, false},
		{"vfr uses the average rate", testmedia.Options{Seconds: 3, VFR: true}, 20, 0, true},
		{"start time", testmedia.Options{Seconds: 3, StartTime: 3.5}, 25, 3.5, true},
		// Matroska shifts the AAC priming (1024 samples) to 0, so video starts after it.
		{"matroska", testmedia.Options{Seconds: 3, Container: "mkv"}, 25, 1024.0 / 44100, true},
		{"odd size", testmedia.Options{Seconds: 3, Width: 853, Height: 480}, 25, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testmedia.Generate(t, t.TempDir(), c.opt)
			info, err := Probe(p)
			if err != nil {
				t.Fatal(err)
			}
			o := c.opt
			if o.Width == 0 {
				o.Width, o.Height = 320, 180
			}
			v := info.Video
			if v == nil || v.Codec != "h264" || v.Width != o.Width || v.Height != o.Height {
				t.Fatalf("video %+v, want h264 %dx%d", v, o.Width, o.Height)
			}
			if math.Abs(v.FPS-c.fps) > 0.01 || math.Abs(float64(v.FrameRateNum)/float64(v.FrameRateDen)-c.fps) > 0.01 {
				t.Errorf("fps %v (%d/%d), want %v", v.FPS, v.FrameRateNum, v.FrameRateDen, c.fps)
			}
			if math.Abs(info.Duration-3) > 0.05 {
				t.Errorf("duration %v, want 3", info.Duration)
			}
			if math.Abs(info.StartTime-c.startTime) > 0.001 {
				t.Errorf("start time %v, want %v", info.StartTime, c.startTime)
			}
			if (info.Audio != nil) != c.audio {
				t.Fatalf("audio %+v, want present=%v", info.Audio, c.audio)
			}
			if c.audio && (info.Audio.Codec != "aac" || info.Audio.SampleRate != 44100 || info.Audio.Channels != 1) {
				t.Errorf("audio %+v, want aac 44100 Hz mono", info.Audio)
			}
		})
	}
}
