package transcode

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/asticode/go-astiav"
)

// swDecoder is libavcodec's software decoder for one stream (video or audio).
type swDecoder struct {
	cc    *astiav.CodecContext
	frame *astiav.Frame
	what  string // "video" / "audio", for messages
	// badPackets counts packets the decoder rejected in a row: isolated
	// damage is skipped (as the ffmpeg CLI does), a stream of it is fatal.
	badPackets int
}

const maxBadPackets = 50

func newSWDecoder(s *astiav.Stream, what string) (*swDecoder, error) {
	cp := s.CodecParameters()
	codec := astiav.FindDecoder(cp.CodecID())
	if codec == nil {
		return nil, fmt.Errorf("%s stream %d: no decoder for codec %q", what, s.Index(), cp.CodecID().Name())
	}
	d := &swDecoder{what: what}
	if d.cc = astiav.AllocCodecContext(codec); d.cc == nil {
		return nil, fmt.Errorf("%s decoder: cannot allocate a codec context", what)
	}
	if err := cp.ToCodecContext(d.cc); err != nil {
		d.close()
		return nil, fmt.Errorf("%s decoder: codec parameters: %w", what, err)
	}
	d.cc.SetTimeBase(s.TimeBase())
	if what == "video" {
		d.cc.SetThreadCount(0) // one thread per core
	}
	if err := d.cc.Open(codec, nil); err != nil {
		d.close()
		return nil, fmt.Errorf("open %s decoder %s: %w", what, codec.Name(), err)
	}
	d.frame = astiav.AllocFrame()
	return d, nil
}

func (d *swDecoder) decode(pkt *astiav.Packet, emit func(*astiav.Frame) error) error {
	if err := d.cc.SendPacket(pkt); err != nil && !errors.Is(err, astiav.ErrEof) {
		if errors.Is(err, astiav.ErrEagain) {
			// Cannot happen while every send is followed by a full receive;
			// treat it as a bug rather than loop.
			return fmt.Errorf("%s decoder: send packet: %w", d.what, err)
		}
		d.badPackets++
		slog.Debug("transcode: decoder rejected a packet", "stream", d.what, "err", err)
		if d.badPackets > maxBadPackets {
			return fmt.Errorf("%s decoder: %d damaged packets in a row, last: %w", d.what, d.badPackets, err)
		}
		return nil
	}
	d.badPackets = 0
	for {
		err := d.cc.ReceiveFrame(d.frame)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			d.badPackets++
			if d.badPackets > maxBadPackets {
				return fmt.Errorf("%s decoder: receive frame: %w", d.what, err)
			}
			continue
		}
		err = emit(d.frame)
		d.frame.Unref()
		if err != nil {
			return err
		}
	}
}

func (d *swDecoder) close() {
	if d.frame != nil {
		d.frame.Free()
		d.frame = nil
	}
	if d.cc != nil {
		d.cc.Free()
		d.cc = nil
	}
}
