package transcode

import (
	"log/slog"
	"strings"
	"sync"

	"github.com/asticode/go-astiav"
)

var logOnce sync.Once

// setupFFmpegLog routes FFmpeg's own log lines to slog at debug level, so a
// corrupt file or an encoder's chatter never reaches stderr directly. Only
// warnings and worse are passed up from C: astiav formats every message that
// passes the level check, and libx264/libavcodec are very chatty below it.
func setupFFmpegLog() {
	logOnce.Do(func() {
		astiav.SetLogLevel(astiav.LogLevelWarning)
		astiav.SetLogCallback(func(c astiav.Classer, l astiav.LogLevel, _, msg string) {
			attrs := []any{"ffmpeg_level", int(l)}
			if c != nil {
				if cl := c.Class(); cl != nil {
					attrs = append(attrs, "ffmpeg_class", cl.Name())
				}
			}
			slog.Debug(strings.TrimSpace(msg), attrs...)
		})
	})
}
