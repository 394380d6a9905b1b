package transcode

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

const (
	audioRate    = 48000
	aacFrameSize = 1024
)

var audioTimeBase = astiav.NewRational(1, audioRate)

// audioChain decodes the source audio, resamples it to 48 kHz stereo on a
// fixed sample grid and encodes AAC-LC.
//
// The grid: output sample k of the item sits at k/48000 s after the item
// start, and AAC frame j holds samples [j×1024, (j+1)×1024). A run that starts
// at segment n begins a little before the segment on that grid (see
// runAudioStart; aresample's first_pts pads or trims the decoded audio to that
// exact sample), so every run produces packets at the same timestamps and
// segments from different runs or pods join without an audio overlap or gap.
type audioChain struct {
	dec        *swDecoder
	graph      *astiav.FilterGraph
	src, sink  *astiav.FilterContext
	enc        *astiav.CodecContext
	filtered   *astiav.Frame
	pkt        *astiav.Packet
	originPts  int64 // the item start in the audio stream's time base
	streamTB   astiav.Rational
	startTicks int64 // where the run starts, output ticks
	srcEnded   bool
}

// runAudioStart is where a run that starts at the given output tick
// (1/90000 from the item start) begins its audio, in 48 kHz samples. It is on
// the AAC frame grid, at least one frame before the segment start (the
// encoder's priming frame and warm-up fall in the previous segment and are
// dropped), and a multiple of the input sample period so that aresample's
// first_pts, which counts input samples, lands on it exactly.
func runAudioStart(startTicks int64, inRate int) int64 {
	if startTicks <= 0 {
		return 0
	}
	step := int64(aacFrameSize)
	if inRate > 0 {
		period := int64(audioRate) / gcd(audioRate, int64(inRate)) // 48 kHz samples per whole input sample step
		step = step / gcd(step, period) * period
	}
	s := startTicks*audioRate/90000 - aacFrameSize
	if s <= 0 {
		return 0
	}
	return s / step * step
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func newAudioChain(s *astiav.Stream, originPts int64, startTicks int64, bitrate int) (*audioChain, error) {
	a := &audioChain{originPts: originPts, streamTB: s.TimeBase(), startTicks: startTicks}
	var err error
	if a.dec, err = newSWDecoder(s, "audio"); err != nil {
		return nil, err
	}
	codec := astiav.FindEncoder(astiav.CodecIDAac)
	if codec == nil {
		a.close()
		return nil, errors.New("no AAC encoder in this FFmpeg build")
	}
	if a.enc = astiav.AllocCodecContext(codec); a.enc == nil {
		a.close()
		return nil, errors.New("audio encoder: cannot allocate a codec context")
	}
	a.enc.SetSampleRate(audioRate)
	a.enc.SetSampleFormat(astiav.SampleFormatFltp)
	a.enc.SetChannelLayout(astiav.ChannelLayoutStereo)
	a.enc.SetChannels(2)
	a.enc.SetBitRate(int64(bitrate))
	a.enc.SetTimeBase(audioTimeBase)
	a.enc.SetProfile(astiav.ProfileAacLow)
	if err := a.enc.Open(codec, nil); err != nil {
		a.close()
		return nil, fmt.Errorf("open AAC encoder (%d b/s): %w", bitrate, err)
	}
	if fs := a.enc.FrameSize(); fs != aacFrameSize {
		a.close()
		return nil, fmt.Errorf("AAC encoder frame size is %d, want %d", fs, aacFrameSize)
	}
	a.filtered = astiav.AllocFrame()
	a.pkt = astiav.AllocPacket()
	return a, nil
}

// initGraph builds the resampling graph once the first decoded frame shows
// the real sample format and layout (container parameters can be wrong).
func (a *audioChain) initGraph(f *astiav.Frame) error {
	a.graph = astiav.AllocFilterGraph()
	if a.graph == nil {
		return errors.New("audio filter: cannot allocate a graph")
	}
	a.graph.SetThreadCount(1)
	args := astiav.FilterArgs{
		"time_base":   a.streamTB.String(),
		"sample_rate": strconv.Itoa(f.SampleRate()),
		"sample_fmt":  f.SampleFormat().Name(),
	}
	if l := f.ChannelLayout(); l.NbChannels() > 0 && l.String() != "" {
		args["channel_layout"] = l.String()
	} else {
		args["channels"] = strconv.Itoa(a.dec.cc.Channels())
	}
	var err error
	if a.src, err = a.graph.NewFilterContext(astiav.FindFilterByName("abuffer"), "in", args); err != nil {
		return fmt.Errorf("audio filter: abuffer %s: %w", args, err)
	}
	if a.sink, err = a.graph.NewFilterContext(astiav.FindFilterByName("abuffersink"), "out", nil); err != nil {
		return fmt.Errorf("audio filter: abuffersink: %w", err)
	}
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(a.src)
	outputs.SetPadIdx(0)
	outputs.SetNext(nil)
	inputs.SetName("out")
	inputs.SetFilterContext(a.sink)
	inputs.SetPadIdx(0)
	inputs.SetNext(nil)
	// min_hard_comp: timestamp gaps over 1 ms are filled with silence or
	// trimmed, which also aligns the first sample on the grid; the output
	// timestamps stay continuous from first_pts.
	// first_pts counts input samples (swresample multiplies it by the output
	// rate to get its internal unit), hence the conversion from 48 kHz.
	first := runAudioStart(a.startTicks, f.SampleRate()) * int64(f.SampleRate()) / audioRate
	desc := fmt.Sprintf("aresample=%d:first_pts=%d:min_hard_comp=0.001,"+
		"aformat=sample_fmts=fltp:channel_layouts=stereo,asetnsamples=n=%d:p=0",
		audioRate, first, aacFrameSize)
	if err := a.graph.Parse(desc, inputs, outputs); err != nil {
		return fmt.Errorf("audio filter %q: %w", desc, err)
	}
	if err := a.graph.Configure(); err != nil {
		return fmt.Errorf("audio filter %q: configure: %w", desc, err)
	}
	return nil
}

// push feeds one demuxed audio packet (nil: end of stream) through decoder,
// resampler and encoder, and calls emit for each AAC packet; its timestamps
// are in 1/48000 samples from the item start.
func (a *audioChain) push(pkt *astiav.Packet, emit func(*astiav.Packet) error) error {
	err := a.dec.decode(pkt, func(f *astiav.Frame) error {
		if a.graph == nil {
			if err := a.initGraph(f); err != nil {
				return err
			}
		}
		if ts := frameTime(f); ts != astiav.NoPtsValue {
			f.SetPts(ts - a.originPts)
		}
		if err := a.src.BuffersrcAddFrame(f, astiav.NewBuffersrcFlags(astiav.BuffersrcFlagKeepRef)); err != nil {
			return fmt.Errorf("audio filter: add frame: %w", err)
		}
		return a.pull(emit)
	})
	if err != nil || pkt != nil {
		return err
	}
	// End of stream: flush the filter, then the encoder.
	if a.graph != nil && !a.srcEnded {
		a.srcEnded = true
		if err := a.src.BuffersrcAddFrame(nil, astiav.NewBuffersrcFlags()); err != nil {
			return fmt.Errorf("audio filter: flush: %w", err)
		}
		if err := a.pull(emit); err != nil {
			return err
		}
	}
	if err := a.enc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("audio encoder: flush: %w", err)
	}
	return receivePackets(a.enc, a.pkt, "audio", emit)
}

func (a *audioChain) pull(emit func(*astiav.Packet) error) error {
	for {
		err := a.sink.BuffersinkGetFrame(a.filtered, astiav.NewBuffersinkFlags())
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audio filter: get frame: %w", err)
		}
		err = a.enc.SendFrame(a.filtered)
		a.filtered.Unref()
		if err != nil {
			return fmt.Errorf("audio encoder: send frame: %w", err)
		}
		if err := receivePackets(a.enc, a.pkt, "audio", emit); err != nil {
			return err
		}
	}
}

func (a *audioChain) parameters(cp *astiav.CodecParameters) error {
	return cp.FromCodecContext(a.enc)
}

func (a *audioChain) close() {
	if a.graph != nil {
		a.graph.Free()
		a.graph = nil
	}
	if a.filtered != nil {
		a.filtered.Free()
		a.filtered = nil
	}
	if a.pkt != nil {
		a.pkt.Free()
		a.pkt = nil
	}
	if a.enc != nil {
		a.enc.Free()
		a.enc = nil
	}
	if a.dec != nil {
		a.dec.close()
		a.dec = nil
	}
}
