package transcode

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func infoOf(w, h int, audio bool, dur float64) *MediaInfo {
	i := &MediaInfo{Duration: dur, Video: &VideoInfo{Codec: "h264", Width: w, Height: h, FPS: 25, FrameRateNum: 25, FrameRateDen: 1}}
	if audio {
		i.Audio = &AudioInfo{Codec: "aac", Channels: 2, SampleRate: 44100}
	}
	return i
}

var testRungs = []Rung{
	{"1080p", 1080, 5_000_000, 128_000},
	{"720p", 720, 2_800_000, 128_000},
	{"480p", 480, 1_400_000, 96_000},
	{"360p", 360, 800_000, 96_000},
}

func TestLadder(t *testing.T) {
	cases := []struct {
		name    string
		info    *MediaInfo
		want    []string // name WxH
		noAudio bool
	}{
		{"720p source skips 1080p", infoOf(1280, 720, true, 10), []string{"720p 1280x720", "480p 854x480", "360p 640x360"}, false},
		{"odd 853x480", infoOf(853, 480, true, 10), []string{"480p 854x480", "360p 640x360"}, false},
		{"tiny keeps smallest rung at source height", infoOf(321, 181, false, 10), []string{"360p 320x180"}, true},
		{"4:3", infoOf(640, 480, true, 10), []string{"480p 640x480", "360p 480x360"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := Ladder(c.info, testRungs, 6, "veryfast")
			var got []string
			for _, v := range vs {
				got = append(got, fmt.Sprintf("%s %dx%d", v.Name, v.Width, v.Height))
				if v.Width%2 != 0 || v.Height%2 != 0 {
					t.Errorf("%s: odd size %dx%d", v.Name, v.Width, v.Height)
				}
				if (v.AudioBitrate == 0) != c.noAudio {
					t.Errorf("%s: audio bitrate %d with audio=%v", v.Name, v.AudioBitrate, !c.noAudio)
				}
				if v.MaxRate <= v.VideoBitrate || v.BufSize <= 0 {
					t.Errorf("%s: VBV maxrate %d bufsize %d", v.Name, v.MaxRate, v.BufSize)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("Ladder = %v, want %v", got, c.want)
			}
		})
	}
	if vs := Ladder(&MediaInfo{Duration: 3, Audio: &AudioInfo{}}, testRungs, 6, ""); vs != nil {
		t.Errorf("audio-only item: Ladder = %v, want nil", vs)
	}
}

func TestVariantHash(t *testing.T) {
	info := infoOf(1280, 720, true, 10)
	base := NewVariant(info, "720p", 720, 2_800_000, 128_000, 6, "veryfast")
	if h := base.Hash(); len(h) != 16 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Fatalf("Hash %q is not 16 hex digits", h)
	}
	if base.Hash() != NewVariant(info, "720p", 720, 2_800_000, 128_000, 6, "veryfast").Hash() {
		t.Fatal("Hash is not stable")
	}
	changes := map[string]func(v *Variant){
		"width": func(v *Variant) { v.Width += 2 }, "height": func(v *Variant) { v.Height += 2 },
		"bitrate": func(v *Variant) { v.VideoBitrate++ }, "maxrate": func(v *Variant) { v.MaxRate++ },
		"bufsize": func(v *Variant) { v.BufSize++ }, "audio": func(v *Variant) { v.AudioBitrate++ },
		"segment": func(v *Variant) { v.SegmentSeconds++ }, "codec": func(v *Variant) { v.VideoCodec = "h264_vaapi" },
		"preset": func(v *Variant) { v.Preset = "fast" }, "fps": func(v *Variant) { v.FPSNum = 30 },
	}
	for name, change := range changes {
		v := base
		change(&v)
		if v.Hash() == base.Hash() {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

func TestCodecsAndBandwidth(t *testing.T) {
	cases := []struct {
		info   *MediaInfo
		height int
		preset string
		want   string
	}{
		{infoOf(1920, 1080, true, 60), 1080, "veryfast", "avc1.640028,mp4a.40.2"}, // 4.0
		{infoOf(1920, 1080, true, 60), 720, "veryfast", "avc1.64001F,mp4a.40.2"},  // 3.1
		{infoOf(640, 360, false, 60), 360, "veryfast", "avc1.64001E"},             // 3.0
		{infoOf(640, 360, true, 60), 240, "ultrafast", "avc1.42C01E,mp4a.40.2"},
	}
	for _, c := range cases {
		v := NewVariant(c.info, "x", c.height, 2_000_000, 128_000, 6, c.preset)
		if got := v.Codecs(); got != c.want {
			t.Errorf("%dp %s: Codecs = %s, want %s", c.height, c.preset, got, c.want)
		}
		if v.Bandwidth() < v.MaxRate+v.AudioBitrate || v.AverageBandwidth() < v.VideoBitrate+v.AudioBitrate || v.AverageBandwidth() > v.Bandwidth() {
			t.Errorf("%dp: Bandwidth %d / AverageBandwidth %d inconsistent with %+v", c.height, v.Bandwidth(), v.AverageBandwidth(), v)
		}
	}
}

func TestSegmentDurations(t *testing.T) {
	cases := []struct {
		dur  float64
		seg  int
		want []float64
	}{
		{12, 2, []float64{2, 2, 2, 2, 2, 2}},
		{12.04, 2, []float64{2, 2, 2, 2, 2, 2.04}},  // short tail folded
		{13.2, 2, []float64{2, 2, 2, 2, 2, 2, 1.2}}, // tail of at least half a segment kept
		{0.5, 6, []float64{0.5}},
		{6.0, 6, []float64{6}},
	}
	for _, c := range cases {
		got := SegmentDurations(&MediaInfo{Duration: c.dur}, c.seg)
		if len(got) != len(c.want) || SegmentCount(&MediaInfo{Duration: c.dur}, c.seg) != len(c.want) {
			t.Fatalf("SegmentDurations(%v, %d) = %v, want %v", c.dur, c.seg, got, c.want)
		}
		sum := 0.0
		for i := range got {
			sum += got[i]
			if math.Abs(got[i]-c.want[i]) > 1e-9 {
				t.Errorf("SegmentDurations(%v, %d) = %v, want %v", c.dur, c.seg, got, c.want)
			}
		}
		if math.Abs(sum-c.dur) > 1e-9 {
			t.Errorf("sum %v, want %v", sum, c.dur)
		}
	}
	if p := SegmentPath("/x/y", 7); p != "/x/y/7.ts" {
		t.Errorf("SegmentPath = %s", p)
	}
}

func TestRunAudioStart(t *testing.T) {
	for _, rate := range []int{48000, 44100, 32000, 22050, 8000} {
		for _, sec := range []int64{0, 2, 6, 10, 3600} {
			ticks := sec * 90000
			s := runAudioStart(ticks, rate)
			boundary := sec * audioRate
			if s%aacFrameSize != 0 {
				t.Errorf("%d Hz, %d s: start %d is off the 1024-sample grid", rate, sec, s)
			}
			if s*int64(rate)%audioRate != 0 {
				t.Errorf("%d Hz, %d s: start %d is not a whole number of input samples", rate, sec, s)
			}
			if sec > 0 && (s > boundary-aacFrameSize || s < boundary-aacFrameSize-6000) {
				t.Errorf("%d Hz, %d s: start %d, want within (%d-6000, %d]", rate, sec, s, boundary-aacFrameSize, boundary-aacFrameSize)
			}
			if sec == 0 && s != 0 {
				t.Errorf("%d Hz: start at segment 0 is %d, want 0", rate, s)
			}
		}
	}
}
