package transcode

import (
	"fmt"

	"github.com/asticode/go-astiav"
)

// input is an opened source file: the demuxer and the streams we use (the
// first video and the first audio stream; others are ignored).
type input struct {
	fc   *astiav.FormatContext
	vs   *astiav.Stream // nil: no video
	as   *astiav.Stream // nil: no audio
	info *MediaInfo
}

func openInput(path string) (*input, error) {
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return nil, fmt.Errorf("open %s: cannot allocate a format context", path)
	}
	// Local files only: "file:" keeps a name with a colon from being read
	// as a protocol, and the whitelist stops a playlist-like input (HLS,
	// concat) from reaching the network or other protocols.
	opts := astiav.NewDictionary()
	defer opts.Free()
	if err := opts.Set("protocol_whitelist", "file", astiav.NewDictionaryFlags()); err != nil {
		fc.Free()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := fc.OpenInput("file:"+path, nil, opts); err != nil {
		// avformat_open_input frees the context on failure.
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	in := &input{fc: fc}
	if err := fc.FindStreamInfo(nil); err != nil {
		in.close()
		return nil, fmt.Errorf("open %s: read stream info: %w", path, err)
	}
	for _, s := range fc.Streams() {
		switch s.CodecParameters().MediaType() {
		case astiav.MediaTypeVideo:
			if in.vs == nil {
				in.vs = s
			}
		case astiav.MediaTypeAudio:
			if in.as == nil && s.CodecParameters().SampleRate() > 0 {
				in.as = s
			}
		}
	}
	if in.vs == nil && in.as == nil {
		in.close()
		return nil, fmt.Errorf("open %s: %w", path, errNoStreams)
	}
	info, err := describe(path, fc, in.vs, in.as)
	if err != nil {
		in.close()
		return nil, err
	}
	in.info = info
	return in, nil
}

func (in *input) close() {
	if in.fc != nil {
		in.fc.CloseInput()
		in.fc.Free()
		in.fc = nil
	}
}

// videoOrigin is the item start (MediaInfo.StartTime) in the video stream's
// time base: the first video timestamp, else the container's start time.
func (in *input) videoOrigin() int64 {
	if st := in.vs.StartTime(); st != astiav.NoPtsValue {
		return st
	}
	if st := in.fc.StartTime(); st != astiav.NoPtsValue {
		return astiav.RescaleQ(st, astiav.TimeBaseQ, in.vs.TimeBase())
	}
	return 0
}
