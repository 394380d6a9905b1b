package transcode

import (
	"fmt"

	"github.com/asticode/go-astiav"
)

// swScaler is libswscale to yuv420p at the variant's size. It follows
// changes of the source size or pixel format mid-stream.
type swScaler struct {
	w, h    int
	ctx     *astiav.SoftwareScaleContext
	dst     *astiav.Frame
	srcW    int
	srcH    int
	srcFmt  astiav.PixelFormat
	dstFmt  astiav.PixelFormat
	flagSet astiav.SoftwareScaleContextFlags
}

func newSWScaler(w, h int) *swScaler {
	return &swScaler{w: w, h: h, dstFmt: astiav.PixelFormatYuv420P,
		flagSet: astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBicubic)}
}

func (s *swScaler) scale(src *astiav.Frame) (*astiav.Frame, error) {
	if s.ctx == nil || src.Width() != s.srcW || src.Height() != s.srcH || src.PixelFormat() != s.srcFmt {
		s.close()
		ctx, err := astiav.CreateSoftwareScaleContext(src.Width(), src.Height(), src.PixelFormat(),
			s.w, s.h, s.dstFmt, s.flagSet)
		if err != nil {
			return nil, fmt.Errorf("scaler %dx%d %s → %dx%d: %w", src.Width(), src.Height(), src.PixelFormat(), s.w, s.h, err)
		}
		s.ctx, s.srcW, s.srcH, s.srcFmt = ctx, src.Width(), src.Height(), src.PixelFormat()
		s.dst = astiav.AllocFrame()
		s.dst.SetWidth(s.w)
		s.dst.SetHeight(s.h)
		s.dst.SetPixelFormat(s.dstFmt)
		if err := s.dst.AllocBuffer(0); err != nil {
			return nil, fmt.Errorf("scaler: allocate %dx%d frame: %w", s.w, s.h, err)
		}
	}
	// The encoder copies the picture during send (libx264 copies into its
	// own frame pool) and drops its reference before send returns, so the
	// same output buffer is reused for every frame.
	if err := s.ctx.ScaleFrame(src, s.dst); err != nil {
		return nil, fmt.Errorf("scale frame: %w", err)
	}
	return s.dst, nil
}

func (s *swScaler) close() {
	if s.dst != nil {
		s.dst.Free()
		s.dst = nil
	}
	if s.ctx != nil {
		s.ctx.Free()
		s.ctx = nil
	}
}
