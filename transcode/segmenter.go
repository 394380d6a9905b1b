package transcode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/asticode/go-astiav"
)

// Stream indices inside every segment.
const (
	videoIndex = 0
	audioIndex = 1
)

// offsetTicks is TimelineOffset in output ticks.
var offsetTicks = int64(TimelineOffset) * 90000 / int64(time.Second)

// errFinished: the last segment is published (or Next skipped past it).
var errFinished = errors.New("transcode: finished")

// restartAt asks the pipeline to seek and start again at segment n (Next
// skipped ahead over segments that exist).
type restartAt struct{ n int }

func (r restartAt) Error() string { return fmt.Sprintf("transcode: restart at segment %d", r.n) }

// segmenter routes encoded packets to segments and publishes each segment:
// packets whose timestamp falls in [n × s, (n+1) × s) belong to segment n (the
// last segment takes everything after its start). Video timestamps are in
// presentation order, and every boundary is a closed-GOP IDR, so the first
// video packet of segment n+1 means video is done with segment n; the same
// holds for audio. Segment n is closed when both streams are past it. Packets
// of later segments that arrive first (audio runs ahead of the x264
// lookahead) wait in pending until their segment is opened.
type segmenter struct {
	spec     *JobSpec
	log      *slog.Logger
	durs     []float64
	count    int
	segTicks int64
	hasAudio bool

	vPar, aPar *astiav.CodecParameters // set by begin for each run

	runStart  int
	cur       int // segment being written; -1 when none
	mux       *segmentMuxer
	pending   map[int][]pendingPacket
	vSeen     int // highest segment a video packet went to in this run
	aSeen     int
	frames    int
	opened    time.Time
	published int
}

type pendingPacket struct {
	pkt    *astiav.Packet
	stream int
}

func newSegmenter(spec *JobSpec, durs []float64, hasAudio bool, log *slog.Logger) *segmenter {
	return &segmenter{
		spec: spec, log: log, durs: durs, count: len(durs), hasAudio: hasAudio,
		segTicks: int64(spec.Variant.SegmentSeconds) * 90000, cur: -1,
		vPar: astiav.AllocCodecParameters(), aPar: astiav.AllocCodecParameters(),
	}
}

// segOf is the segment of a timestamp (output ticks from the item start).
func (s *segmenter) segOf(ticks int64) int {
	if ticks < 0 {
		return 0
	}
	k := int(ticks / s.segTicks)
	if k >= s.count {
		k = s.count - 1
	}
	return k
}

// next asks JobSpec.Next which segment to produce.
func (s *segmenter) next(ctx context.Context, n int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.spec.Next == nil {
		return n, nil
	}
	m, err := s.spec.Next(ctx, n)
	if err != nil {
		return 0, err
	}
	if m < 0 {
		return 0, fmt.Errorf("JobSpec.Next(%d) returned segment %d", n, m)
	}
	return m, nil
}

// begin starts a run at segment n with the encoders' parameters.
func (s *segmenter) begin(n int, v videoEncoder, a *audioChain) error {
	s.dropPending()
	s.abort()
	s.runStart, s.vSeen, s.aSeen = n, n-1, n-1
	if err := v.parameters(s.vPar); err != nil {
		return fmt.Errorf("video stream parameters: %w", err)
	}
	if a != nil {
		if err := a.parameters(s.aPar); err != nil {
			return fmt.Errorf("audio stream parameters: %w", err)
		}
	}
	return s.open(n)
}

func (s *segmenter) open(n int) error {
	var aPar *astiav.CodecParameters
	if s.hasAudio {
		aPar = s.aPar
	}
	m, err := openSegmentMuxer(tmpSegmentPath(s.spec.OutDir, n), s.vPar, aPar)
	if err != nil {
		return fmt.Errorf("segment %d: %w", n, err)
	}
	s.mux, s.cur, s.frames, s.opened = m, n, 0, time.Now()
	for _, p := range s.pending[n] {
		err = s.write(p.pkt, p.stream)
		p.pkt.Free()
		if err != nil {
			break
		}
	}
	delete(s.pending, n)
	return err
}

func (s *segmenter) write(pkt *astiav.Packet, stream int) error {
	if stream == videoIndex {
		s.frames++
	}
	if err := s.mux.write(pkt, stream); err != nil {
		return fmt.Errorf("segment %d: %w", s.cur, err)
	}
	return nil
}

// add routes one encoded packet (timestamps in output ticks from the item
// start). It may publish segments and call Next; it returns errFinished or a
// restartAt when the run must end.
func (s *segmenter) add(ctx context.Context, pkt *astiav.Packet, stream int) error {
	k := s.segOf(pkt.Pts())
	if k < s.runStart {
		// Audio encoder priming before the run's first segment: that time
		// belongs to the previous segment, which another run made.
		return nil
	}
	if stream == videoIndex {
		s.vSeen = max(s.vSeen, k)
	} else {
		s.aSeen = max(s.aSeen, k)
	}
	switch {
	case k == s.cur:
		if err := s.write(pkt, stream); err != nil {
			return err
		}
	case k > s.cur:
		if s.pending == nil {
			s.pending = map[int][]pendingPacket{}
		}
		s.pending[k] = append(s.pending[k], pendingPacket{pkt.Clone(), stream})
	default:
		s.log.Debug("transcode: late packet dropped", "segment", k, "current", s.cur, "stream", stream)
	}
	return s.advance(ctx)
}

// eof marks both streams complete and publishes what remains.
func (s *segmenter) eof(ctx context.Context) error {
	s.vSeen, s.aSeen = s.count, s.count
	if err := s.advance(ctx); err != nil {
		return err
	}
	return errFinished
}

// complete says whether segment k can be closed. Audio is done with k when
// an audio packet of a later segment arrived, or when video is already two
// segments further: the demuxer interleaves the streams and the AAC encoder
// lags by one frame, so audio for k would have come by then. The second rule
// keeps a file whose audio ends early (or has a long gap) from holding every
// later segment back until the end of the file.
func (s *segmenter) complete(k int) bool {
	return s.vSeen > k && (!s.hasAudio || s.aSeen > k || s.vSeen > k+1)
}

func (s *segmenter) advance(ctx context.Context) error {
	for s.cur >= 0 && s.complete(s.cur) {
		if err := s.publish(ctx); err != nil {
			return err
		}
		n := s.cur + 1
		s.cur = -1
		if n >= s.count {
			return errFinished
		}
		m, err := s.next(ctx, n)
		if err != nil {
			return err
		}
		if m >= s.count {
			return errFinished
		}
		if m != n {
			return restartAt{m}
		}
		if err := s.open(n); err != nil {
			return err
		}
	}
	return nil
}

// publish closes the current segment, lets Commit veto it, and renames
// n.ts.tmp to n.ts.
func (s *segmenter) publish(ctx context.Context) error {
	n, m := s.cur, s.mux
	s.mux = nil
	tmp := m.path
	if err := m.close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("segment %d: %w", n, err)
	}
	if s.spec.Commit != nil {
		if err := s.spec.Commit(ctx, n, tmp); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("commit segment %d: %w", n, err)
		}
	}
	final := SegmentPath(s.spec.OutDir, n)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("publish segment %d: %w", n, err)
	}
	s.published++
	st := SegmentStats{N: n, Path: final, Frames: s.frames,
		Duration: time.Duration(s.durs[n] * float64(time.Second)), Elapsed: time.Since(s.opened)}
	if fi, err := os.Stat(final); err == nil {
		st.Bytes = fi.Size()
	}
	s.log.Debug("transcode: segment published", "segment", n, "frames", st.Frames, "bytes", st.Bytes, "elapsed", st.Elapsed)
	if s.spec.Progress != nil {
		s.spec.Progress(st)
	}
	return nil
}

func (s *segmenter) dropPending() {
	for k, ps := range s.pending {
		for _, p := range ps {
			p.pkt.Free()
		}
		delete(s.pending, k)
	}
}

// abort drops the segment being written, if any.
func (s *segmenter) abort() {
	if s.mux != nil {
		s.mux.abort()
		s.mux = nil
	}
	s.cur = -1
}

func (s *segmenter) close() {
	s.abort()
	s.dropPending()
	s.vPar.Free()
	s.aPar.Free()
}

// tmpSegmentPath is where segment n is written before it is published:
// n.ts.<random>.tmp. The random part matters because segment directories are
// shared: two jobs (two play sessions, or two pods during a takeover) may
// produce the same segment at once, and with one shared n.ts.tmp their
// writes would interleave in one file, which the first rename would then
// publish while the second writer still writes into it. With a name each,
// both write a whole file and the last rename wins atomically.
func tmpSegmentPath(dir string, n int) string {
	var b [6]byte
	rand.Read(b[:])
	return SegmentPath(dir, n) + "." + hex.EncodeToString(b[:]) + ".tmp"
}

// segmentMuxer is one MPEG-TS file. Every segment gets its own muxer so a
// segment is a complete file whatever run or pod wrote it; the options make
// such files join cleanly: initial_discontinuity because each muxer restarts
// the continuity counters, avoid_negative_ts=disabled and mpegts_copyts=1 so
// no muxer shifts timestamps on its own (all share TimelineOffset instead).
type segmentMuxer struct {
	fc   *astiav.FormatContext
	pb   *astiav.IOContext
	path string
}

func openSegmentMuxer(path string, vPar, aPar *astiav.CodecParameters) (*segmentMuxer, error) {
	fc, err := astiav.AllocOutputFormatContext(nil, "mpegts", path)
	if err != nil {
		return nil, fmt.Errorf("mpegts muxer: %w", err)
	}
	m := &segmentMuxer{fc: fc, path: path}
	for _, par := range []*astiav.CodecParameters{vPar, aPar} {
		if par == nil {
			continue
		}
		st := fc.NewStream(nil)
		if st == nil {
			m.abort()
			return nil, errors.New("mpegts muxer: cannot add a stream")
		}
		if err := par.Copy(st.CodecParameters()); err != nil {
			m.abort()
			return nil, fmt.Errorf("mpegts muxer: stream parameters: %w", err)
		}
		st.CodecParameters().SetCodecTag(0)
		st.SetTimeBase(outTimeBase)
	}
	if m.pb, err = astiav.OpenIOContext("file:"+path, astiav.NewIOContextFlags(astiav.IOContextFlagWrite)); err != nil {
		m.abort()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	fc.SetPb(m.pb)
	opts := astiav.NewDictionary()
	defer opts.Free()
	for k, v := range map[string]string{
		"mpegts_flags":      "+initial_discontinuity",
		"avoid_negative_ts": "disabled",
		"mpegts_copyts":     "1",
	} {
		if err := opts.Set(k, v, astiav.NewDictionaryFlags()); err != nil {
			m.abort()
			return nil, err
		}
	}
	if err := fc.WriteHeader(opts); err != nil {
		m.abort()
		return nil, fmt.Errorf("mpegts header: %w", err)
	}
	return m, nil
}

// write muxes pkt (output ticks from the item start) after adding
// TimelineOffset. The muxer takes pkt's reference.
func (m *segmentMuxer) write(pkt *astiav.Packet, stream int) error {
	pkt.SetStreamIndex(stream)
	if pts := pkt.Pts(); pts != astiav.NoPtsValue {
		pkt.SetPts(pts + offsetTicks)
	}
	if dts := pkt.Dts(); dts != astiav.NoPtsValue {
		pkt.SetDts(dts + offsetTicks)
	}
	if err := m.fc.WriteInterleavedFrame(pkt); err != nil {
		return fmt.Errorf("mux packet: %w", err)
	}
	return nil
}

func (m *segmentMuxer) close() error {
	err := m.fc.WriteTrailer()
	if cerr := m.pb.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", m.path, cerr)
	}
	m.pb = nil
	m.fc.Free()
	m.fc = nil
	return err
}

func (m *segmentMuxer) abort() {
	if m.pb != nil {
		m.pb.Close()
		m.pb = nil
	}
	if m.fc != nil {
		m.fc.Free()
		m.fc = nil
	}
	os.Remove(m.path)
}
