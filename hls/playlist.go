package hls

import (
	"fmt"
	"math"
	"strings"

	"github.com/wasmhls/wasmhls/transcode"
)

// targetDuration is EXT-X-TARGETDURATION: the longest segment rounded to the
// nearest integer (RFC 8216 4.3.3.1). Segment durations do not depend on the
// variant, so every media playlist of an item carries the same value.
func targetDuration(durations []float64) int {
	t := 1
	for _, d := range durations {
		if r := int(math.Round(d)); r > t {
			t = r
		}
	}
	return t
}

// masterPlaylist lists every variant with the attributes players use to
// choose one; URIs are relative: {session}/{variant}/index.m3u8.
func masterPlaylist(session string, variants []transcode.Variant) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, v := range variants {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"%s\",RESOLUTION=%dx%d",
			v.Bandwidth(), v.AverageBandwidth(), v.Codecs(), v.Width, v.Height)
		if v.FPSNum > 0 && v.FPSDen > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", float64(v.FPSNum)/float64(v.FPSDen))
		}
		fmt.Fprintf(&b, "\n%s/%s/index.m3u8\n", session, v.Name)
	}
	return b.String()
}

// mediaPlaylist is the complete VOD playlist of one variant: every segment
// is listed before any is transcoded, and the playlist never changes.
func mediaPlaylist(durations []float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:%d\n"+
		"#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n", targetDuration(durations))
	for i, d := range durations {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%d.ts\n", d, i)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String()
}
