package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// serve measures cached-segment serving: wrk with 64 connections against a
// wasmhls segment URL and against nginx serving the very same file.
func (b *bench) serve() (string, error) {
	clip, err := b.clip()
	if err != nil {
		return "", err
	}
	tdir := filepath.Join(b.work, "serve-transcode")
	os.RemoveAll(tdir)
	ladder := fmt.Sprintf("[{name: %dp, height: %d, video_bitrate: %d, audio_bitrate: %d}]", benchHeight, benchHeight, benchVBR, benchABR)
	var ttfs []float64
	var srv *server
	var segURL, segFile string
	// Cold requests: a fresh transcode_dir and server each time.
	for i := 0; i < b.runs; i++ {
		os.RemoveAll(tdir)
		if srv != nil {
			srv.stop()
		}
		srv, err = b.startServer("WASMHLS_MEDIA_DIR="+filepath.Dir(clip), "WASMHLS_TRANSCODE_DIR="+tdir,
			"WASMHLS_SEGMENT_SECONDS="+strconv.Itoa(benchSegment), "WASMHLS_LADDER="+ladder,
			"WASMHLS_PLUGINS_CACHE_DIR="+filepath.Join(b.work, "wazero-cache"))
		if err != nil {
			return "", err
		}
		segURL, err = firstSegmentURL(srv.base)
		if err != nil {
			srv.stop()
			return "", err
		}
		_, d, err := fetch(segURL)
		if err != nil {
			srv.stop()
			return "", err
		}
		ttfs = append(ttfs, d.Seconds())
	}
	defer srv.stop()
	matches, _ := filepath.Glob(filepath.Join(tdir, "*", "*", "0.ts"))
	if len(matches) != 1 {
		return "", fmt.Errorf("expected one 0.ts under %s, found %v", tdir, matches)
	}
	segFile = matches[0]

	nginxRoot := filepath.Dir(segFile)
	ng, err := startNginx(b.work, nginxRoot)
	if err != nil {
		return "", err
	}
	defer ng.stop()

	// One discarded run of each first: the first wrk run against a fresh
	// process was 25-35% slower for both servers (page cache, TCP buffers,
	// Go's heap growing), which made the medians of 3 swing.
	if _, err := wrk(segURL); err != nil {
		return "", err
	}
	if _, err := wrk(ng.base + "/0.ts"); err != nil {
		return "", err
	}
	var ours, theirs []float64
	for i := 0; i < b.runs; i++ {
		r1, err := wrk(segURL)
		if err != nil {
			return "", err
		}
		r2, err := wrk(ng.base + "/0.ts")
		if err != nil {
			return "", err
		}
		ours, theirs = append(ours, r1), append(theirs, r2)
	}
	st, _ := os.Stat(segFile)
	var sb strings.Builder
	sb.WriteString("## Serving\n\n")
	fmt.Fprintf(&sb, "Time to first segment after a cold request: a fresh server and an empty transcode_dir, "+
		"GET master.m3u8 then GET segment 0 of the %dp variant, timed until its last byte; reference: the CLI's time "+
		"to write its first segment from process start (transcode section; when that section did not run, no ratio).\n\n", benchHeight)
	sb.WriteString("| figure | wasmhls | reference | ratio | goal |\n| --- | --- | --- | --- | --- |\n")
	if b.cliFirstSegment > 0 {
		fmt.Fprintf(&sb, "| time to first segment (s) | %.2f | %.2f (ffmpeg CLI) | %.2f× | ≤ 1.0× |\n", median(ttfs), b.cliFirstSegment, median(ttfs)/b.cliFirstSegment)
	} else {
		fmt.Fprintf(&sb, "| time to first segment (s) | %.2f | — | — | ≤ 1.0× |\n", median(ttfs))
	}
	fmt.Fprintf(&sb, "| cached segment, wrk -t2 -c64 -d5s (req/s, %d KiB file) | %.0f | %.0f (nginx %s, sendfile) | %.2f× | ≥ 0.9× |\n",
		st.Size()/1024, median(ours), median(theirs), nginxVersion(), median(ours)/median(theirs))
	fmt.Fprintf(&sb, "\nRaw runs — ttfs %s s; wasmhls req/s %s; nginx req/s %s. Server and nginx share the 2 cores with wrk; one warm-up run of each was discarded.\n",
		fmtList(ttfs, "%.2f"), fmtList(ours, "%.0f"), fmtList(theirs, "%.0f"))
	return sb.String(), nil
}

var variantURIRe = regexp.MustCompile(`(?m)^([^#\s][^\s]*index\.m3u8)\s*$`)

// firstSegmentURL follows master.m3u8 of the only item to segment 0 of its
// first variant.
func firstSegmentURL(base string) (string, error) {
	body, _, err := fetch(base + "/api/v1/items")
	if err != nil {
		return "", err
	}
	id := regexp.MustCompile(`"id"\s*:\s*"([^"]+)"`).FindSubmatch(body)
	if id == nil {
		return "", fmt.Errorf("no item in %s", body)
	}
	itemBase := base + "/hls/" + string(id[1]) + "/"
	master, _, err := fetch(itemBase + "master.m3u8")
	if err != nil {
		return "", err
	}
	m := variantURIRe.FindSubmatch(master)
	if m == nil {
		return "", fmt.Errorf("no variant in master playlist:\n%s", master)
	}
	variant := strings.TrimSuffix(string(m[1]), "index.m3u8")
	return itemBase + variant + "0.ts", nil
}

var rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

func wrk(url string) (float64, error) {
	m, err := runMeasured(context.Background(), "wrk", "-t2", "-c64", "-d5s", url)
	if err != nil {
		return 0, err
	}
	if strings.Contains(m.stdout, "Non-2xx") {
		return 0, fmt.Errorf("wrk %s: non-2xx responses:\n%s", url, m.stdout)
	}
	mm := rpsRe.FindStringSubmatch(m.stdout)
	if mm == nil {
		return 0, fmt.Errorf("wrk output without Requests/sec:\n%s", m.stdout)
	}
	return strconv.ParseFloat(mm[1], 64)
}
