package transcode

//#cgo pkg-config: libavutil
//#include <libavutil/frame.h>
//static int64_t wasmhls_best_effort_ts(void *f) { return ((AVFrame*)f)->best_effort_timestamp; }
import "C"

import "github.com/asticode/go-astiav"

// frameTime is the decoder's best-effort timestamp of f (what the ffmpeg CLI
// uses): the pts, or a guess from the dts when the container has no pts.
// go-astiav v0.16.0 does not expose this field, hence the one-line helper.
func frameTime(f *astiav.Frame) int64 {
	return int64(C.wasmhls_best_effort_ts(f.UnsafePointer()))
}
