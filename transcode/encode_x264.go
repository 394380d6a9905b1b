package transcode

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/asticode/go-astiav"
)

// x264Encoder is libx264 set up for HLS: High profile at the variant's level
// (so Variant.Codecs is true), VBV maxrate/bufsize (so Variant.Bandwidth
// holds), no scene-cut keyframes and a GOP longer than a segment, with IDR
// frames forced exactly at segment starts.
type x264Encoder struct {
	cc  *astiav.CodecContext
	pkt *astiav.Packet
}

func newX264Encoder(v Variant) (*x264Encoder, error) {
	codec := astiav.FindEncoderByName(v.VideoCodec)
	if codec == nil {
		return nil, fmt.Errorf("video encoder %q is not available in this FFmpeg build", v.VideoCodec)
	}
	e := &x264Encoder{}
	if e.cc = astiav.AllocCodecContext(codec); e.cc == nil {
		return nil, errors.New("video encoder: cannot allocate a codec context")
	}
	e.cc.SetWidth(v.Width)
	e.cc.SetHeight(v.Height)
	e.cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	e.cc.SetSampleAspectRatio(astiav.NewRational(1, 1))
	e.cc.SetTimeBase(outTimeBase)
	e.cc.SetFramerate(astiav.NewRational(v.FPSNum, v.FPSDen))
	e.cc.SetBitRate(int64(v.VideoBitrate))
	e.cc.SetProfile(astiav.ProfileH264High)
	e.cc.SetLevel(astiav.Level(v.level()))
	// A GOP well beyond a segment: the only keyframes are the forced ones.
	gop := int(math.Ceil(4 * float64(v.SegmentSeconds) * v.fps()))
	if gop < 250 {
		gop = 250
	}
	e.cc.SetGopSize(gop)
	e.cc.SetThreadCount(0)

	opts := astiav.NewDictionary()
	defer opts.Free()
	for k, val := range map[string]string{
		"preset":      v.Preset,
		"profile":     "high",
		"maxrate":     strconv.Itoa(v.MaxRate),
		"bufsize":     strconv.Itoa(v.BufSize),
		"forced-idr":  "1",
		"x264-params": "scenecut=0:open-gop=0",
	} {
		if err := opts.Set(k, val, astiav.NewDictionaryFlags()); err != nil {
			e.close()
			return nil, fmt.Errorf("video encoder option %s=%s: %w", k, val, err)
		}
	}
	if err := e.cc.Open(codec, opts); err != nil {
		e.close()
		return nil, fmt.Errorf("open video encoder %s (%dx%d, preset %s): %w", v.VideoCodec, v.Width, v.Height, v.Preset, err)
	}
	e.pkt = astiav.AllocPacket()
	return e, nil
}

func (e *x264Encoder) encode(f *astiav.Frame, forceIDR bool, emit func(*astiav.Packet) error) error {
	if f != nil {
		if forceIDR {
			f.SetPictureType(astiav.PictureTypeI)
		} else {
			f.SetPictureType(astiav.PictureTypeNone)
		}
	}
	if err := e.cc.SendFrame(f); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("video encoder: send frame: %w", err)
	}
	return receivePackets(e.cc, e.pkt, "video", emit)
}

// receivePackets drains an encoder after a send.
func receivePackets(cc *astiav.CodecContext, pkt *astiav.Packet, what string, emit func(*astiav.Packet) error) error {
	for {
		err := cc.ReceivePacket(pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s encoder: receive packet: %w", what, err)
		}
		err = emit(pkt)
		pkt.Unref()
		if err != nil {
			return err
		}
	}
}

func (e *x264Encoder) parameters(cp *astiav.CodecParameters) error {
	return cp.FromCodecContext(e.cc)
}

func (e *x264Encoder) close() {
	if e.pkt != nil {
		e.pkt.Free()
		e.pkt = nil
	}
	if e.cc != nil {
		e.cc.Free()
		e.cc = nil
	}
}
