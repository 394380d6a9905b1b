package transcode

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Rung is one configured step of the ABR ladder.
type Rung struct {
	Name                       string
	Height                     int
	VideoBitrate, AudioBitrate int
}

const (
	defaultVideoCodec = "libx264"
	defaultPreset     = "veryfast"
	// pipelineVersion is part of Hash: bump it when a code change alters the
	// bytes of the segments, so old segment directories are not reused.
	pipelineVersion = 1
	// maxRateFactor and bufSeconds set the VBV: maxrate = 1.1 × target,
	// buffer = 1 s at maxrate. Bandwidth follows from them.
	maxRateFactor = 1.1
	bufSeconds    = 1.0
	// AAC is encoded as ABR and may overshoot its target on short windows.
	audioPeakFactor = 1.25
)

// Ladder builds the variants of an item: rungs taller than the source are
// skipped; if every rung is taller, the smallest one is kept at the source
// height. It returns nil for an item without video.
func Ladder(info *MediaInfo, rungs []Rung, segmentSeconds int, preset string) []Variant {
	if info == nil || info.Video == nil || len(rungs) == 0 {
		return nil
	}
	var out []Variant
	for _, r := range rungs {
		if r.Height <= info.Video.Height {
			out = append(out, NewVariant(info, r.Name, r.Height, r.VideoBitrate, r.AudioBitrate, segmentSeconds, preset))
		}
	}
	if len(out) == 0 {
		small := rungs[0]
		for _, r := range rungs[1:] {
			if r.Height < small.Height {
				small = r
			}
		}
		out = append(out, NewVariant(info, small.Name, info.Video.Height, small.VideoBitrate, small.AudioBitrate, segmentSeconds, preset))
	}
	// Highest first: the order players list them in.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Height > out[j].Height })
	return out
}

// NewVariant makes the encoder settings of one rendition. The height is made
// even (rounded down), the width follows the source aspect ratio (square
// pixels), rounded to even; the audio bitrate is 0 when the item has no audio.
func NewVariant(info *MediaInfo, name string, height, videoBitrate, audioBitrate, segmentSeconds int, preset string) Variant {
	if preset == "" {
		preset = defaultPreset
	}
	v := Variant{
		Name: name, Height: height &^ 1, VideoBitrate: videoBitrate, AudioBitrate: audioBitrate,
		SegmentSeconds: segmentSeconds, VideoCodec: defaultVideoCodec, Preset: preset, FPSNum: 25, FPSDen: 1,
	}
	if v.Height < 2 {
		v.Height = 2
	}
	if info != nil && info.Video != nil && info.Video.Height > 0 {
		w := float64(info.Video.Width) * float64(v.Height) / float64(info.Video.Height)
		v.Width = int(math.Round(w/2)) * 2
		if info.Video.FrameRateNum > 0 && info.Video.FrameRateDen > 0 {
			v.FPSNum, v.FPSDen = info.Video.FrameRateNum, info.Video.FrameRateDen
		}
	}
	if v.Width < 2 {
		v.Width = 2
	}
	if info == nil || info.Audio == nil {
		v.AudioBitrate = 0
	}
	v.MaxRate = int(math.Round(float64(videoBitrate) * maxRateFactor))
	v.BufSize = int(math.Round(float64(v.MaxRate) * bufSeconds))
	return v
}

// Hash names the variant's segment directory: 16 hex digits of a SHA-256 over
// every field that changes the output and the pipeline version.
func (v Variant) Hash() string {
	b, _ := json.Marshal(struct {
		V       Variant
		Version int
	}{v, pipelineVersion})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Codecs is the RFC 6381 CODECS value: the H.264 profile and constraint
// flags libx264 writes for the preset, at the level Run sets on the encoder
// (see level), plus AAC-LC when there is audio. Every x264 preset but
// ultrafast uses 8x8 transforms, so the stream is High profile; ultrafast
// turns off CABAC, B-frames and 8x8 transforms and x264 then declares
// Constrained Baseline whatever profile is asked for.
func (v Variant) Codecs() string {
	profile, constraints := profileIDCHigh, 0x00
	if v.Preset == "ultrafast" {
		profile, constraints = profileIDCBaseline, 0xC0
	}
	s := fmt.Sprintf("avc1.%02X%02X%02X", profile, constraints, v.level())
	if v.AudioBitrate > 0 {
		s += ",mp4a.40.2"
	}
	return s
}

const (
	profileIDCBaseline = 66
	profileIDCHigh     = 100
)

func (v Variant) fps() float64 {
	if v.FPSNum <= 0 || v.FPSDen <= 0 {
		return 25
	}
	return float64(v.FPSNum) / float64(v.FPSDen)
}

// Bandwidth is a bound on the peak bitrate of any segment, MPEG-TS overhead
// included. The VBV guarantees that video bits over any window of T seconds
// stay under maxrate × T + bufsize; the shortest segment is at least half a
// segment long (SegmentDurations folds a shorter tail into the previous
// segment) unless the whole item is shorter, so T ≥ SegmentSeconds / 2.
func (v Variant) Bandwidth() int {
	tmin := float64(v.SegmentSeconds) / 2
	if tmin <= 0 {
		tmin = 1
	}
	video := float64(v.MaxRate) + float64(v.BufSize)/tmin
	audio := float64(v.AudioBitrate) * audioPeakFactor
	return int(math.Ceil((video+audio)*tsPayloadOverhead + v.tsFixedOverhead(tmin)))
}

// AverageBandwidth estimates the average bitrate: targets plus MPEG-TS
// overhead over a full-length segment.
func (v Variant) AverageBandwidth() int {
	return int(math.Ceil(float64(v.VideoBitrate+v.AudioBitrate)*tsPayloadOverhead + v.tsFixedOverhead(float64(v.SegmentSeconds))))
}

// tsPayloadOverhead: 4 header bytes in every 188-byte TS packet, with margin.
const tsPayloadOverhead = 188.0 / 184.0 * 1.01

// tsFixedOverhead is the MPEG-TS cost per second that does not scale with the
// payload, for a segment of t seconds: PAT+PMT+SDT written at the start of
// each segment and then every 100 ms; one PES header plus on average half a
// stuffed TS packet per video frame and per audio PES (the muxer groups about
// 4 AAC frames per PES, counted as one PES per frame here for margin); and
// PCR-only packets (every 20 ms at most) when the video is sparse.
func (v Variant) tsFixedOverhead(t float64) float64 {
	const pkt = 188 * 8
	tables := 3*pkt/t + 10*2*pkt
	perFrame := v.fps() * pkt
	audio := 0.0
	if v.AudioBitrate > 0 {
		audio = 48000.0 / 1024 * pkt
	}
	pcr := 50.0 * pkt
	return tables + perFrame + audio + pcr
}

// h264Levels is Table A-1 of H.264: level_idc, max macroblocks/s, max frame
// size in macroblocks, max video bitrate (kbit/s, ×1.25 for High profile).
var h264Levels = []struct {
	idc          int
	mbps, fs, br int
}{
	{30, 40500, 1620, 10000},
	{31, 108000, 3600, 14000},
	{32, 216000, 5120, 20000},
	{40, 245760, 8192, 20000},
	{41, 245760, 8192, 50000},
	{42, 522240, 8704, 50000},
	{50, 589824, 22080, 135000},
	{51, 983040, 36864, 240000},
	{52, 2073600, 36864, 240000},
}

// level is the smallest H.264 level (3.0 at least, which every HLS client
// decodes) that fits the frame size, macroblock rate and VBV maxrate. Run
// sets it on the encoder, so the CODECS string is what the stream declares.
func (v Variant) level() int {
	mbw, mbh := (v.Width+15)/16, (v.Height+15)/16
	fs := mbw * mbh
	mbps := float64(fs) * v.fps()
	for _, l := range h264Levels {
		if fs <= l.fs && mbps <= float64(l.mbps) && float64(v.MaxRate) <= float64(l.br)*1250 {
			return l.idc
		}
	}
	return h264Levels[len(h264Levels)-1].idc
}
