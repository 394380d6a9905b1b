package transcode

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmhls/wasmhls/internal/testmedia"
)

func TestCancelStopsRun(t *testing.T) {
	in, info := media(t, stdOpt)
	v := smallVariant(info)

	t.Run("while encoding", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var published []int
		err := Run(ctx, JobSpec{Input: in, Info: info, Variant: v, OutDir: dir,
			Progress: func(s SegmentStats) {
				published = append(published, s.N)
				cancel() // from inside the job: the next check must stop it
			}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		// The pipeline checks the context before every packet, so it stops
		// inside segment 1: nothing after segment 0 is published.
		if len(published) != 1 {
			t.Errorf("published %v after cancel, want [0]", published)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		if len(files) != 1 || filepath.Base(files[0]) != "0.ts" {
			t.Errorf("files after cancel: %v, want only 0.ts (no .tmp)", files)
		}
	})

	t.Run("while Next blocks", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		blocked := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, JobSpec{Input: in, Info: info, Variant: v, OutDir: t.TempDir(),
				Next: func(ctx context.Context, n int) (int, error) {
					if n < 2 {
						return n, nil
					}
					close(blocked) // throttled: wait for the viewer
					<-ctx.Done()
					return 0, ctx.Err()
				}})
		}()
		<-blocked
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	})
}

// TestStartStopDoesNotLeak runs 100 short jobs that are stopped early (by
// cancellation, by Next ending the job, and by a seek to a later segment)
// and asserts that the resident set size does not grow with them. A leaked
// decoder, x264 encoder (several MB each with its lookahead and frame pool),
// filter graph or muxer per cycle would add hundreds of MB over 100 cycles;
// the bound of 64 MB leaves room for allocator noise and the race
// detector's shadow memory while still catching any per-cycle leak of an
// FFmpeg object. RSS (VmRSS from /proc/self/status) is used rather than
// counting allocations because the FFmpeg objects live in C memory that Go's
// counters do not see.
func TestStartStopDoesNotLeak(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status")
	}
	in, info := media(t, testmedia.Options{Seconds: 4, Width: 320, Height: 180})
	v := NewVariant(info, "180p", 180, 200_000, 64_000, testSeg, "ultrafast")
	dir := t.TempDir()
	cycle := func(i int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		spec := JobSpec{Input: in, Info: info, Variant: v, OutDir: dir}
		switch i % 3 {
		case 0: // cancelled after the first segment
			spec.Progress = func(SegmentStats) { cancel() }
		case 1: // ended by Next
			spec.Next = func(ctx context.Context, n int) (int, error) {
				if n > 0 {
					return 0, ErrDone
				}
				return n, nil
			}
		case 2: // a seek (new chain) and then cancelled
			spec.Next = func(ctx context.Context, n int) (int, error) { return n, nil }
			spec.Start = 1
			spec.Progress = func(SegmentStats) { cancel() }
		}
		err := Run(ctx, spec)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrDone) {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	// Warm-up: glibc grows one malloc arena per encoder/decoder thread and
	// keeps them; measured without -race, RSS rises for the first ~100
	// cycles and then stays flat (±2 MiB from 100 to 400 cycles).
	for i := 0; i < 30; i++ {
		cycle(i)
	}
	before, fdsBefore := rssBytes(t), openFDs(t)
	for i := 0; i < 100; i++ {
		cycle(i)
	}
	after, fdsAfter := rssBytes(t), openFDs(t)
	growth := after - before
	t.Logf("RSS before %d MiB, after 100 cycles %d MiB (growth %d KiB); open fds %d → %d",
		before>>20, after>>20, growth>>10, fdsBefore, fdsAfter)
	if growth > 64<<20 {
		t.Errorf("RSS grew by %d MiB over 100 start/stop cycles", growth>>20)
	}
	// An input or segment file left open (a demuxer or muxer not freed)
	// shows exactly here.
	if fdsAfter > fdsBefore {
		t.Errorf("open file descriptors grew from %d to %d", fdsBefore, fdsAfter)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func rssBytes(t *testing.T) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
