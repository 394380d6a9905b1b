package transcode

import (
	"math"
	"path/filepath"
	"strconv"
)

// SegmentCount is the number of segments of an item: one per started
// segment_seconds, except that a tail shorter than half a segment is folded
// into the last full segment (a very short segment would have a huge bitrate
// and risks a player stall for a fraction of a second of media).
func SegmentCount(info *MediaInfo, segmentSeconds int) int {
	return len(SegmentDurations(info, segmentSeconds))
}

// SegmentDurations are the EXTINF values: segment n covers [n × s, (n+1) × s)
// of the item's timeline except the last, which runs to the end. They sum to
// the probed duration.
func SegmentDurations(info *MediaInfo, segmentSeconds int) []float64 {
	if info == nil || info.Duration <= 0 || segmentSeconds <= 0 {
		return nil
	}
	s := float64(segmentSeconds)
	d := info.Duration
	full := int(math.Floor(d / s))
	rem := d - float64(full)*s
	if full == 0 {
		return []float64{d}
	}
	n := full
	if rem >= s/2 {
		n++
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = s
	}
	out[n-1] = d - float64(n-1)*s
	return out
}

// SegmentPath is dir/n.ts; a segment being written is SegmentPath + ".tmp".
func SegmentPath(dir string, n int) string {
	return filepath.Join(dir, strconv.Itoa(n)+".ts")
}
