package transcode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/asticode/go-astiav"
)

// Run produces the segments of one variant of one item, from spec.Start (or
// where spec.Next sends it) to the end, in the calling goroutine. It returns
// nil when the last segment is published, ctx.Err() when ctx is cancelled,
// and the error of Next or Commit as is (ErrDone included) when they stop it.
// Every FFmpeg object it creates is freed before it returns.
func Run(ctx context.Context, spec JobSpec) error {
	setupFFmpegLog()
	if err := checkSpec(&spec); err != nil {
		return err
	}
	if err := os.MkdirAll(spec.OutDir, 0o755); err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	in, err := openInput(spec.Input)
	if err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	defer in.close()
	if in.vs == nil {
		return fmt.Errorf("transcode %s: no video stream", spec.Input)
	}
	if spec.Info == nil {
		spec.Info = in.info
	}
	durs := SegmentDurations(spec.Info, spec.Variant.SegmentSeconds)
	if spec.Start >= len(durs) {
		return fmt.Errorf("transcode %s: start segment %d is past the last segment %d", spec.Input, spec.Start, len(durs)-1)
	}
	log := spec.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("input", spec.Input, "variant", spec.Variant.Name)
	p := &pipeline{
		in: in, v: spec.Variant, hasAudio: in.as != nil && spec.Variant.AudioBitrate > 0,
		originPts: in.videoOrigin(), pkt: astiav.AllocPacket(), fresh: true, log: log,
	}
	defer p.pkt.Free()
	seg := newSegmenter(&spec, durs, p.hasAudio, log)
	defer seg.close()
	p.seg = seg

	n, err := seg.next(ctx, spec.Start)
	if err != nil {
		return err
	}
	backoff := int64(0) // extra seek distance, output ticks
	for n < len(durs) {
		err := p.runFrom(ctx, n, backoff)
		var r restartAt
		switch {
		case err == nil || errors.Is(err, errFinished):
			return nil
		case errors.As(err, &r):
			n, backoff = r.n, 0
		case errors.Is(err, errReseek):
			backoff = max(2*backoff, 90000)
			log.Debug("transcode: seek landed after the boundary, seeking further back", "segment", n, "backoff_s", backoff/90000)
		case err != nil:
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return ctxErr
			}
			return err
		}
	}
	return nil
}

func checkSpec(spec *JobSpec) error {
	v := spec.Variant
	switch {
	case spec.Input == "":
		return errors.New("transcode: JobSpec.Input is empty")
	case spec.OutDir == "":
		return errors.New("transcode: JobSpec.OutDir is empty")
	case v.Width <= 0 || v.Height <= 0 || v.Width%2 != 0 || v.Height%2 != 0:
		return fmt.Errorf("transcode: variant %q size %dx%d must be positive and even", v.Name, v.Width, v.Height)
	case v.SegmentSeconds <= 0:
		return fmt.Errorf("transcode: variant %q segment_seconds %d must be positive", v.Name, v.SegmentSeconds)
	case v.VideoBitrate <= 0 || v.MaxRate < v.VideoBitrate || v.BufSize <= 0:
		return fmt.Errorf("transcode: variant %q bitrates (target %d, maxrate %d, bufsize %d) are invalid", v.Name, v.VideoBitrate, v.MaxRate, v.BufSize)
	case v.AudioBitrate < 0:
		return fmt.Errorf("transcode: variant %q audio bitrate %d is negative", v.Name, v.AudioBitrate)
	case v.FPSNum <= 0 || v.FPSDen <= 0:
		return fmt.Errorf("transcode: variant %q frame rate %d/%d is invalid", v.Name, v.FPSNum, v.FPSDen)
	case v.VideoCodec == "" || v.Preset == "":
		return fmt.Errorf("transcode: variant %q needs a video codec and a preset", v.Name)
	case spec.Start < 0:
		return fmt.Errorf("transcode: start segment %d is negative", spec.Start)
	}
	return nil
}

// errReseek: after a seek the first decoded frame came after the segment
// boundary (an imprecise container index), so the frame that starts the
// segment was missed; the run is repeated with a seek further back.
var errReseek = errors.New("transcode: reseek")

// pipeline is the demuxer shared by the runs of one job; each run builds
// its own decode → scale → encode chain.
type pipeline struct {
	in        *input
	v         Variant
	hasAudio  bool
	originPts int64 // item start, video stream time base
	pkt       *astiav.Packet
	fresh     bool // demuxer still at the start of the file
	seg       *segmenter
	log       *slog.Logger
}

// runFrom produces segments from n until the item ends (errFinished), Next
// skips (restartAt), or an error.
func (p *pipeline) runFrom(ctx context.Context, n int, backoff int64) error {
	startTicks := int64(n) * p.seg.segTicks

	vd, vs, ve, err := newVideoStages(p.in.vs, p.v)
	if err != nil {
		return err
	}
	// Freed encoder first, decoder last: the reverse of the data flow.
	defer vd.close()
	defer vs.close()
	defer ve.close()
	var audio *audioChain
	if p.hasAudio {
		aOrigin := astiav.RescaleQ(p.originPts, p.in.vs.TimeBase(), p.in.as.TimeBase())
		if audio, err = newAudioChain(p.in.as, aOrigin, startTicks, p.v.AudioBitrate); err != nil {
			return err
		}
		defer audio.close()
	}
	if err := p.seg.begin(n, ve, audio); err != nil {
		return err
	}

	seekTicks := startTicks - backoff
	if n > 0 || !p.fresh {
		if seekTicks < 0 {
			seekTicks = 0
		}
		ts := p.originPts + astiav.RescaleQ(seekTicks, outTimeBase, p.in.vs.TimeBase())
		if err := p.in.fc.SeekFrame(p.in.vs.Index(), ts, astiav.NewSeekFlags(astiav.SeekFlagBackward)); err != nil {
			return fmt.Errorf("seek %s to segment %d: %w", p.in.info.Path, n, err)
		}
	}
	p.fresh = false

	vtb := p.in.vs.TimeBase()
	frameTicks := astiav.RescaleQ(1, astiav.NewRational(p.v.FPSDen, p.v.FPSNum), outTimeBase)
	lastRel := int64(astiav.NoPtsValue)
	lastSeg := -1
	decoded := 0
	onVideoPacket := func(pkt *astiav.Packet) error { return p.seg.add(ctx, pkt, videoIndex) }
	onVideoFrame := func(f *astiav.Frame) error {
		var rel int64
		if ts := frameTime(f); ts != astiav.NoPtsValue {
			rel = astiav.RescaleQ(ts-p.originPts, vtb, outTimeBase)
		} else if lastRel != astiav.NoPtsValue {
			rel = lastRel + frameTicks
		}
		decoded++
		if decoded == 1 && n > 0 && rel > startTicks && seekTicks > 0 {
			return errReseek
		}
		k := p.seg.segOf(rel)
		if k < n || (lastRel != astiav.NoPtsValue && rel <= lastRel) {
			return nil // before the run's first boundary, or a duplicate timestamp
		}
		lastRel = rel
		out, err := vs.scale(f)
		if err != nil {
			return err
		}
		out.SetPts(rel)
		force := k != lastSeg
		lastSeg = k
		return ve.encode(out, force, onVideoPacket)
	}
	onAudioPacket := func(pkt *astiav.Packet) error {
		pkt.RescaleTs(audioTimeBase, outTimeBase)
		return p.seg.add(ctx, pkt, audioIndex)
	}

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.in.fc.ReadFrame(p.pkt)
		if errors.Is(err, astiav.ErrEof) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", p.in.info.Path, err)
		}
		switch idx := p.pkt.StreamIndex(); {
		case idx == p.in.vs.Index():
			err = vd.decode(p.pkt, onVideoFrame)
		case audio != nil && idx == p.in.as.Index():
			err = audio.push(p.pkt, onAudioPacket)
		}
		p.pkt.Unref()
		if err != nil {
			return err
		}
	}
	// End of file: drain every stage in order, then publish what is left.
	if err := vd.decode(nil, onVideoFrame); err != nil {
		return err
	}
	if decoded == 0 && seekTicks > 0 {
		// Nothing decodable after the seek point (no key frame before the
		// end of a stream without an index, such as MPEG-TS).
		return errReseek
	}
	if decoded == 0 {
		return fmt.Errorf("transcode %s: no video frame could be decoded", p.in.info.Path)
	}
	if err := ve.encode(nil, false, onVideoPacket); err != nil {
		return err
	}
	if audio != nil {
		if err := audio.push(nil, onAudioPacket); err != nil {
			return err
		}
	}
	return p.seg.eof(ctx)
}
