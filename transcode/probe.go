package transcode

import (
	"errors"
	"fmt"
	"math"

	"github.com/asticode/go-astiav"
)

// Probe opens path with libavformat and reports what the transcoder will see.
//
// StartTime is the item's timeline origin: the first video timestamp (the
// container's start time when there is no video), because segment n starts at
// StartTime + n × segment_seconds and its first frame must be a video frame.
// Duration runs from StartTime to the end of the longest stream.
func Probe(path string) (*MediaInfo, error) {
	setupFFmpegLog()
	in, err := openInput(path)
	if err != nil {
		return nil, err
	}
	defer in.close()
	return in.info, nil
}

// describe fills a MediaInfo from an opened, stream-info'd format context.
func describe(path string, fc *astiav.FormatContext, vs, as *astiav.Stream) (*MediaInfo, error) {
	info := &MediaInfo{Path: path}
	if f := fc.InputFormat(); f != nil {
		info.Format = f.Name()
	}
	fmtStart := 0.0
	if st := fc.StartTime(); st != astiav.NoPtsValue {
		fmtStart = float64(st) / float64(astiav.TimeBase)
	}
	info.StartTime = fmtStart

	end := math.Inf(-1)
	haveEnd := true
	for _, s := range []*astiav.Stream{vs, as} {
		if s == nil {
			continue
		}
		tb := s.TimeBase().Float64()
		start := fmtStart
		if st := s.StartTime(); st != astiav.NoPtsValue {
			start = float64(st) * tb
		}
		if s == vs {
			info.StartTime = start
		}
		if d := s.Duration(); d != astiav.NoPtsValue && d > 0 {
			end = math.Max(end, start+float64(d)*tb)
		} else {
			haveEnd = false
		}
	}
	if !haveEnd || math.IsInf(end, -1) {
		// Containers such as Matroska and MPEG-TS carry no per-stream
		// duration; libavformat's format duration is then end − start.
		d := fc.Duration()
		if d == astiav.NoPtsValue || d <= 0 {
			return nil, fmt.Errorf("probe %s: unknown duration", path)
		}
		end = fmtStart + float64(d)/float64(astiav.TimeBase)
	}
	info.Duration = end - info.StartTime
	if info.Duration <= 0 || math.IsNaN(info.Duration) {
		return nil, fmt.Errorf("probe %s: invalid duration %.3f s", path, info.Duration)
	}

	if vs != nil {
		cp := vs.CodecParameters()
		if cp.Width() <= 0 || cp.Height() <= 0 {
			return nil, fmt.Errorf("probe %s: video stream %d has no size (%dx%d)", path, vs.Index(), cp.Width(), cp.Height())
		}
		num, den := frameRate(vs)
		info.Video = &VideoInfo{
			Codec: cp.CodecID().Name(), Width: cp.Width(), Height: cp.Height(),
			FPS: float64(num) / float64(den), FrameRateNum: num, FrameRateDen: den,
		}
	}
	if as != nil {
		cp := as.CodecParameters()
		ch := cp.Channels()
		if l := cp.ChannelLayout(); ch == 0 && l.Valid() {
			ch = l.NbChannels()
		}
		info.Audio = &AudioInfo{Codec: cp.CodecID().Name(), Channels: ch, SampleRate: cp.SampleRate()}
	}
	return info, nil
}

// frameRate is the stream's average frame rate (right for variable frame
// rate), then its base rate r_frame_rate, then 25 fps; rates outside
// (0, 240] are container artefacts (1000 fps for Matroska timestamps) and are
// skipped.
func frameRate(s *astiav.Stream) (num, den int) {
	for _, r := range []astiav.Rational{s.AvgFrameRate(), s.RFrameRate()} {
		if r.Num() > 0 && r.Den() > 0 {
			if f := r.Float64(); f > 0 && f <= 240 {
				return r.Num(), r.Den()
			}
		}
	}
	return 25, 1
}

var errNoStreams = errors.New("no audio or video stream")
