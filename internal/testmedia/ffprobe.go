package testmedia

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Frame is one decoded frame as ffprobe reports it.
type Frame struct {
	MediaType string  // "video" or "audio"
	KeyFrame  bool    // key_frame=1 (an IDR for H.264 from libx264 with forced-idr)
	PictType  string  // I, P, B ("?" for audio)
	PTS       int64   // in the stream time base (1/90000 for MPEG-TS)
	PTSTime   float64 // seconds
	PktSize   int     // bytes of the packet that carried it
}

// Packet is one demuxed packet as ffprobe reports it.
type Packet struct {
	MediaType string
	PTSTime   float64
	DTSTime   float64
	Size      int
	Key       bool // flags contain K
}

// Format is ffprobe's format section.
type Format struct {
	Name      string
	Duration  float64
	StartTime float64
	Size      int64
	BitRate   int64
}

// Stream is ffprobe's stream section (the fields tests look at).
type Stream struct {
	Index        int
	CodecType    string // video, audio
	CodecName    string
	Profile      string
	Level        int
	Width        int
	Height       int
	AvgFrameRate string
	RFrameRate   string
	SampleRate   int
	Channels     int
}

func ffprobe(t testing.TB, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ffprobe", append([]string{"-hide_banner", "-v", "error", "-of", "json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffprobe %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// num reads ffprobe's numbers, which come as JSON strings or numbers.
type num string

func (n *num) UnmarshalJSON(b []byte) error {
	*n = num(strings.Trim(string(b), `"`))
	return nil
}
func (n num) f() float64 { v, _ := strconv.ParseFloat(string(n), 64); return v }
func (n num) i() int64   { v, _ := strconv.ParseInt(string(n), 10, 64); return v }

// FFprobeFrames decodes file's first video stream and returns its frames in
// presentation order.
func FFprobeFrames(t testing.TB, file string) []Frame {
	t.Helper()
	return probeFrames(t, file, "v:0")
}

// FFprobeAudioFrames is FFprobeFrames for the first audio stream.
func FFprobeAudioFrames(t testing.TB, file string) []Frame {
	t.Helper()
	return probeFrames(t, file, "a:0")
}

func probeFrames(t testing.TB, file, sel string) []Frame {
	t.Helper()
	out := ffprobe(t, "-select_streams", sel, "-show_entries",
		"frame=media_type,key_frame,pict_type,pts,pts_time,pkt_size", "-show_frames", file)
	var r struct {
		Frames []struct {
			MediaType string `json:"media_type"`
			KeyFrame  num    `json:"key_frame"`
			PictType  string `json:"pict_type"`
			PTS       num    `json:"pts"`
			PTSTime   num    `json:"pts_time"`
			PktSize   num    `json:"pkt_size"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe frames of %s: %v", file, err)
	}
	fs := make([]Frame, len(r.Frames))
	for i, f := range r.Frames {
		fs[i] = Frame{MediaType: f.MediaType, KeyFrame: f.KeyFrame.i() == 1, PictType: f.PictType,
			PTS: f.PTS.i(), PTSTime: f.PTSTime.f(), PktSize: int(f.PktSize.i())}
	}
	return fs
}

// FFprobePackets returns the packets of the first stream matching sel
// ("v:0", "a:0") in file order.
func FFprobePackets(t testing.TB, file, sel string) []Packet {
	t.Helper()
	out := ffprobe(t, "-select_streams", sel, "-show_entries",
		"packet=codec_type,pts_time,dts_time,size,flags", "-show_packets", file)
	var r struct {
		Packets []struct {
			CodecType string `json:"codec_type"`
			PTSTime   num    `json:"pts_time"`
			DTSTime   num    `json:"dts_time"`
			Size      num    `json:"size"`
			Flags     string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe packets of %s: %v", file, err)
	}
	ps := make([]Packet, len(r.Packets))
	for i, p := range r.Packets {
		ps[i] = Packet{MediaType: p.CodecType, PTSTime: p.PTSTime.f(), DTSTime: p.DTSTime.f(),
			Size: int(p.Size.i()), Key: strings.Contains(p.Flags, "K")}
	}
	return ps
}

// FFprobeFormat returns file's format and streams.
func FFprobeFormat(t testing.TB, file string) (Format, []Stream) {
	t.Helper()
	out := ffprobe(t, "-show_format", "-show_streams", file)
	var r struct {
		Format struct {
			Name      string `json:"format_name"`
			Duration  num    `json:"duration"`
			StartTime num    `json:"start_time"`
			Size      num    `json:"size"`
			BitRate   num    `json:"bit_rate"`
		} `json:"format"`
		Streams []struct {
			Index        int    `json:"index"`
			CodecType    string `json:"codec_type"`
			CodecName    string `json:"codec_name"`
			Profile      string `json:"profile"`
			Level        int    `json:"level"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			AvgFrameRate string `json:"avg_frame_rate"`
			RFrameRate   string `json:"r_frame_rate"`
			SampleRate   num    `json:"sample_rate"`
			Channels     int    `json:"channels"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe format of %s: %v", file, err)
	}
	f := Format{Name: r.Format.Name, Duration: r.Format.Duration.f(), StartTime: r.Format.StartTime.f(),
		Size: r.Format.Size.i(), BitRate: r.Format.BitRate.i()}
	ss := make([]Stream, len(r.Streams))
	for i, s := range r.Streams {
		ss[i] = Stream{Index: s.Index, CodecType: s.CodecType, CodecName: s.CodecName, Profile: s.Profile,
			Level: s.Level, Width: s.Width, Height: s.Height, AvgFrameRate: s.AvgFrameRate,
			RFrameRate: s.RFrameRate, SampleRate: int(s.SampleRate.i()), Channels: s.Channels}
	}
	return f, ss
}

// Concat writes the byte concatenation of files to dst (valid for MPEG-TS
// segments, which is how an HLS client sees them) and returns dst.
func Concat(t testing.TB, dst string, files ...string) string {
	t.Helper()
	var b []byte
	for _, f := range files {
		x, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("testmedia: %v", err)
		}
		b = append(b, x...)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	return dst
}

// DecodeErrors decodes file with the ffmpeg CLI (`ffmpeg -v error -i file -f
// null -`) and returns what it printed: empty means a clean decode. A non-zero
// exit is reported in the returned text too.
func DecodeErrors(t testing.TB, file string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", file, "-f", "null", "-")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(out.String() + "\n" + err.Error())
	}
	return strings.TrimSpace(out.String())
}
