// Package transcode turns a media file into HLS MPEG-TS segments in-process
// with FFmpeg's libraries (go-astiav v0.16.0, FFmpeg 5.1). It knows nothing of
// HTTP, stores or plugins: a caller gives it a JobSpec with hooks and a
// context, and it writes segment files.
package transcode

import (
	"context"
	"log/slog"
	"time"
)

// TimelineOffset is added to every output timestamp so that all segments of an
// item, from any run or pod, share one timeline that never goes negative
// (B-frame DTS). It matches the ffmpeg CLI's MPEG-TS start of 1.4 s.
const TimelineOffset = 1400 * time.Millisecond

// MediaInfo is what Probe reports about a file.
type MediaInfo struct {
	Path      string     `json:"path"`
	Format    string     `json:"format"`
	Duration  float64    `json:"duration_s"`
	StartTime float64    `json:"start_time_s"`
	Video     *VideoInfo `json:"video,omitempty"`
	Audio     *AudioInfo `json:"audio,omitempty"`
}

type VideoInfo struct {
	Codec  string  `json:"codec"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	FPS    float64 `json:"fps"`
	// FrameRateNum/Den is the rational frame rate used for encoding.
	FrameRateNum int `json:"-"`
	FrameRateDen int `json:"-"`
}

type AudioInfo struct {
	Codec      string `json:"codec"`
	Channels   int    `json:"channels"`
	SampleRate int    `json:"sample_rate"`
}

// Variant is one rung of the ABR ladder as the encoder sees it. Every field
// that changes the output bytes is covered by Hash.
type Variant struct {
	Name           string `json:"name"`
	Width          int    `json:"width"`         // even; computed from Height and the source aspect ratio
	Height         int    `json:"height"`        // even
	VideoBitrate   int    `json:"video_bitrate"` // bits/s (target)
	MaxRate        int    `json:"max_rate"`      // bits/s (VBV maxrate)
	BufSize        int    `json:"buf_size"`      // bits (VBV buffer)
	AudioBitrate   int    `json:"audio_bitrate"` // bits/s, 0 when the item has no audio
	SegmentSeconds int    `json:"segment_seconds"`
	VideoCodec     string `json:"video_codec"` // encoder name, "libx264" by default
	Preset         string `json:"preset"`      // x264 preset, "veryfast" by default
	FPSNum         int    `json:"fps_num"`
	FPSDen         int    `json:"fps_den"`
}

// JobSpec describes one transcode run of one variant of one item.
type JobSpec struct {
	Input   string     // absolute path of the source file
	Info    *MediaInfo // from Probe
	Variant Variant
	OutDir  string // transcode_dir/{item}/{variant-hash}; created if missing
	// Start is the first segment to produce.
	Start int

	// Next is called before each segment is produced with the segment the
	// pipeline would produce next (Start first). It returns the segment to
	// produce: the same n to go on, a larger n to skip ahead (segments that
	// already exist; the pipeline seeks), or an error to stop (the job ends
	// with that error; context.Canceled and ErrDone are clean stops). Next may
	// block: that is how throttling pauses a job. nil means "produce every
	// segment from Start to the end".
	Next func(ctx context.Context, n int) (int, error)

	// Commit is called for each completed segment after its temporary file
	// (tmpPath: n.ts.<random>.tmp, unique per writer because segment
	// directories are shared) is written and closed, before it is renamed to
	// n.ts. An error stops the job
	// without publishing the segment (e.g. the lease was lost). nil: always publish.
	Commit func(ctx context.Context, n int, tmpPath string) error

	// Progress is called after segment n has been published.
	Progress func(s SegmentStats)

	// Logger carries the caller's attributes (job, session, pod, epoch);
	// nil: slog.Default().
	Logger *slog.Logger
}

// SegmentStats describes one published segment.
type SegmentStats struct {
	N        int
	Path     string
	Frames   int
	Bytes    int64
	Duration time.Duration
	Elapsed  time.Duration // wall time spent producing it
}

// ErrDone may be returned by JobSpec.Next to end a job cleanly.
var ErrDone = errDone{}

type errDone struct{}

func (errDone) Error() string { return "transcode: done" }
