package testmedia

import (
	"math"
	"os"
	"testing"
)

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		opt  Options
		// want
		audio     bool
		startTime float64
		frames    int
	}{
		{"default", Options{Seconds: 2}, true, 0, 50},
		{"noaudio", Options{Seconds: 2, NoAudio: true, Width: 200, Height: 100}, false, 0, 50},
		{"vfr", Options{Seconds: 2, VFR: true, NoAudio: true}, false, 0, 40},
		{"start", Options{Seconds: 2, StartTime: 3.5, NoAudio: true}, false, 3.5, 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Generate(t, dir, c.opt)
			again := Generate(t, t.TempDir(), c.opt)
			a, _ := os.Stat(p)
			b, _ := os.Stat(again)
			if !os.SameFile(a, b) && a.Size() != b.Size() {
				t.Fatalf("second Generate gave a different file: %d vs %d bytes", a.Size(), b.Size())
			}
			f, ss := FFprobeFormat(t, p)
			hasAudio := false
			for _, s := range ss {
				hasAudio = hasAudio || s.CodecType == "audio"
			}
			if hasAudio != c.audio {
				t.Errorf("audio = %v, want %v", hasAudio, c.audio)
			}
			if math.Abs(f.StartTime-c.startTime) > 0.05 {
				t.Errorf("start time = %v, want %v", f.StartTime, c.startTime)
			}
			fr := FFprobeFrames(t, p)
			if len(fr) != c.frames {
				t.Errorf("frames = %d, want %d", len(fr), c.frames)
			}
			if len(fr) > 0 && !fr[0].KeyFrame {
				t.Errorf("first frame is not a key frame: %+v", fr[0])
			}
			if msg := DecodeErrors(t, p); msg != "" {
				t.Errorf("decode: %s", msg)
			}
		})
	}
}

func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	src := Generate(t, dir, Options{Seconds: 1})
	tr := Truncated(t, dir, src, 0.3)
	st, _ := os.Stat(tr)
	full, _ := os.Stat(src)
	if st.Size() >= full.Size() || st.Size() == 0 {
		t.Fatalf("truncated size %d of %d", st.Size(), full.Size())
	}
	g := Garbage(t, dir, "garbage.mp4", 4096)
	if DecodeErrors(t, g) == "" {
		t.Fatalf("garbage decoded without error")
	}
}

func TestOddSize(t *testing.T) {
	p := Generate(t, t.TempDir(), Options{Seconds: 1, Width: 853, Height: 480, NoAudio: true})
	_, ss := FFprobeFormat(t, p)
	if len(ss) != 1 || ss[0].Width != 853 || ss[0].Height != 480 {
		t.Fatalf("streams %+v, want one 853x480 video stream", ss)
	}
}
