package transcode

import (
	"fmt"

	"github.com/asticode/go-astiav"
)

// The video path is three stages behind small interfaces so that a hardware
// pipeline (VAAPI/NVENC/QSV decoders, GPU scalers, hardware encoders keeping
// frames in GPU memory) can replace any of them without touching demuxing,
// segmenting or the segment-boundary logic. The software implementations are
// in decode_sw.go, scale_sw.go and encode_x264.go.

// videoDecoder turns demuxed packets of the video stream into frames.
type videoDecoder interface {
	// decode sends pkt (nil: end of stream) and calls emit for each frame
	// that becomes available; the frame is valid only during emit. Its
	// timestamp is read with frameTime.
	decode(pkt *astiav.Packet, emit func(*astiav.Frame) error) error
	close()
}

// scaler converts a decoded frame to the encoder's size and pixel format.
type scaler interface {
	// scale returns a frame owned by the scaler, valid until the next call.
	scale(src *astiav.Frame) (*astiav.Frame, error)
	close()
}

// videoEncoder encodes frames to H.264 packets whose timestamps are in
// outTimeBase (1/90000) ticks relative to the item start.
type videoEncoder interface {
	// encode sends f (nil: drain at end of stream) and calls emit for each
	// packet; the packet is valid only during emit. forceIDR makes f an IDR
	// frame: it starts a segment.
	encode(f *astiav.Frame, forceIDR bool, emit func(*astiav.Packet) error) error
	// parameters copies the stream parameters a muxer needs into cp.
	parameters(cp *astiav.CodecParameters) error
	close()
}

// outTimeBase is the time base of everything after decoding: MPEG-TS's 90 kHz.
var outTimeBase = astiav.NewRational(1, 90000)

// newVideoStages builds the decode → scale → encode chain for a variant. This
// is where hardware stages plug in: the encoder name chosen for the variant
// (Variant.VideoCodec, part of its hash) selects the chain; "libx264" is the
// software one.
func newVideoStages(s *astiav.Stream, v Variant) (videoDecoder, scaler, videoEncoder, error) {
	switch v.VideoCodec {
	case "libx264":
		dec, err := newSWDecoder(s, "video")
		if err != nil {
			return nil, nil, nil, err
		}
		enc, err := newX264Encoder(v)
		if err != nil {
			dec.close()
			return nil, nil, nil, err
		}
		return dec, newSWScaler(v.Width, v.Height), enc, nil
	default:
		return nil, nil, nil, fmt.Errorf("video encoder %q has no pipeline in this build (software: libx264)", v.VideoCodec)
	}
}
