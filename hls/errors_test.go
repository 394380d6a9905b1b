package hls

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmhls/wasmhls/catalog"
)

func TestBadRequestsGetJSONErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	vp := e.variantPath() // /hls/{item}/{session}/360p/
	parts := strings.Split(strings.Trim(vp, "/"), "/")
	item, sess := parts[1], parts[2]
	cases := []struct {
		name, path string
		code       int
		want       string // in the error message
	}{
		{"malformed item", "/hls/Not_An_Id/master.m3u8", 400, "malformed item id"},
		{"item with dots", "/hls/..%2f..%2fetc/master.m3u8", 400, ""},
		{"traversal in item", "/hls/../../etc/passwd", 400, "traversal"},
		{"traversal in segment", "/hls/" + item + "/" + sess + "/360p/../../../x.ts", 400, ""},
		{"encoded traversal", "/hls/" + item + "/" + sess + "/360p/%2e%2e%2f0.ts", 400, ""},
		{"unknown item", "/hls/nothing-0123456789ab/master.m3u8", 404, "unknown item"},
		{"unknown item segment", "/hls/nothing-0123456789ab/" + sess + "/360p/0.ts", 404, "unknown item"},
		{"malformed session", "/hls/" + item + "/bad!/360p/index.m3u8", 400, "malformed session"},
		{"malformed session query", "/hls/" + item + "/master.m3u8?session=x", 400, "malformed session"},
		{"malformed variant", "/hls/" + item + "/" + sess + "/360P/index.m3u8", 400, "malformed variant"},
		{"unknown variant", "/hls/" + item + "/" + sess + "/1080p/index.m3u8", 404, "no variant"},
		{"malformed segment", "/hls/" + item + "/" + sess + "/360p/abc.ts", 400, "malformed segment"},
		{"negative segment", "/hls/" + item + "/" + sess + "/360p/-1.ts", 400, "malformed segment"},
		{"leading zero segment", "/hls/" + item + "/" + sess + "/360p/01.ts", 400, "malformed segment"},
		{"segment past end", "/hls/" + item + "/" + sess + "/360p/5.ts", 404, "out of range"},
		{"far past end", "/hls/" + item + "/" + sess + "/360p/999999.ts", 404, "out of range"},
		{"unknown route", "/nope", 404, "no such route"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.get(c.path)
			if r.code != c.code {
				t.Fatalf("GET %s = %d %s, want %d", c.path, r.code, r.body, c.code)
			}
			msg := jsonErr(t, r)
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not mention %q", msg, c.want)
			}
			if r.header.Get("X-Wasmhls-Pod") != testPod {
				t.Errorf("no X-Wasmhls-Pod on a %d", r.code)
			}
		})
	}
	// Nothing was produced for any of them.
	if got := value(t, e.metrics.JobsStarted); got != 0 {
		t.Errorf("bad requests started %v jobs", got)
	}
}

// A raw request line keeps "..": clients normally clean it, attackers do not.
func TestRawTraversalRequestLine(t *testing.T) {
	e := newEnv(t, envOptions{})
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /hls/" + e.item + "/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("raw traversal: %d, want 400", resp.StatusCode)
	}
}

func TestBrokenMediaFileOnlyBreaksItsOwnURLs(t *testing.T) {
	e := newEnv(t, envOptions{})
	dir := filepath.Dir(e.media)
	if err := os.WriteFile(filepath.Join(dir, "broken.mp4"), []byte("this is not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := catalog.ItemID("broken.mp4")
	r := e.get("/hls/" + broken + "/master.m3u8")
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("broken item master: %d %s, want 422", r.code, r.body)
	}
	if msg := jsonErr(t, r); !strings.Contains(msg, "broken.mp4") {
		t.Errorf("error %q does not name the file", msg)
	}
	// The other item keeps streaming, and the list names the problem.
	e.mustGet(e.variantPath() + "0.ts")
	var items []itemJSON
	if err := json.Unmarshal(e.mustGet("/api/v1/items").body, &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("items: %+v", items)
	}
	for _, it := range items {
		switch it.ID {
		case broken:
			if it.Error == "" || it.Video != nil {
				t.Errorf("broken item listed as %+v", it)
			}
		case e.item:
			if it.Error != "" || it.Video == nil || it.Video.Width != 640 || it.Video.Height != 360 ||
				it.Audio == nil || it.Duration < 9.9 || it.Duration > 10.1 || it.Path != filepath.Base(e.media) {
				t.Errorf("good item listed as %+v (video %+v audio %+v)", it, it.Video, it.Audio)
			}
		default:
			t.Errorf("unexpected item %+v", it)
		}
	}
}
