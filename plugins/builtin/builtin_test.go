package builtin

import (
	"bytes"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	for _, name := range Names {
		b, err := Open(name)
		if err != nil {
			// Not built in this checkout: the message must tell how to fix it.
			if !strings.Contains(err.Error(), "built-in plugin "+name+" is not built: run make plugins") {
				t.Fatalf("Open(%s): unexpected error %v", name, err)
			}
			continue
		}
		if !bytes.HasPrefix(b, []byte("\x00asm")) {
			t.Fatalf("Open(%s): not a wasm module", name)
		}
	}
	for _, bad := range []string{"", "../x", "nope", "a/b"} {
		if _, err := Open(bad); err == nil {
			t.Fatalf("Open(%q) succeeded", bad)
		}
	}
}
