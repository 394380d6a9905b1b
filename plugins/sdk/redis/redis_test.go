package redis

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestReply(t *testing.T) {
	r := Reply{value: json.RawMessage(`"abc"`)}
	if s, err := r.String(); err != nil || s != "abc" {
		t.Fatalf("String: %q %v", s, err)
	}
	if _, err := r.Int(); err == nil {
		t.Fatal("Int of a string reply succeeded")
	}
	if n, err := (Reply{value: json.RawMessage(`1733300000123`)}).Int(); err != nil || n != 1733300000123 {
		t.Fatalf("Int: %d %v", n, err)
	}
	if err := (Reply{nil_: true}).Decode(new(any)); err == nil {
		t.Fatal("Decode of a nil reply succeeded")
	}
}

func TestOutsideWasm(t *testing.T) {
	if _, err := Do("PING"); err == nil {
		t.Fatal("Do outside wasm succeeded")
	}
	if _, err := Do(); err == nil {
		t.Fatal("Do without a command succeeded")
	}
	if _, err := Eval("", nil); err == nil {
		t.Fatal("Eval without a script succeeded")
	}
}

// fastResponse agrees with encoding/json on the host's answers and keeps
// no reference to the buffer it read (hostRedis reuses it).
func TestFastResponse(t *testing.T) {
	for _, out := range []string{
		`{"nil":true}`,
		`{"value":"{\"status\":\"ok\",\"a\":\"\\u003cb\\u003e\"}"}`,
		`{"value":["ok",1733300000500,"",0,0,1,"id \"q\""]}`,
		`{"value":[]}`,
	} {
		var want wireResponse
		if err := json.Unmarshal([]byte(out), &want); err != nil {
			t.Fatal(err)
		}
		buf := []byte(out)
		var got wireResponse
		if !fastResponse(buf, &got) {
			t.Errorf("fast path refused %s", out)
			continue
		}
		for i := range buf {
			buf[i] = 'x' // the next host call overwrites the buffer
		}
		if string(got.Value) != string(want.Value) || got.Nil != want.Nil {
			t.Errorf("fastResponse(%s) = %s %v, want %s %v", out, got.Value, got.Nil, want.Value, want.Nil)
		}
		if got.hasStr {
			var s string
			_ = json.Unmarshal(want.Value, &s)
			if got.str != s {
				t.Errorf("fastResponse(%s) string %q, want %q", out, got.str, s)
			}
		}
	}
	for _, out := range []string{`{"error":"NOSCRIPT x"}`, `{"value":12}`, `{"value":[1],"error":"x"}`, `{"value":"a","error":"x"}`, `{}`} {
		var got wireResponse
		if fastResponse([]byte(out), &got) {
			t.Errorf("fast path accepted %s as %+v", out, got)
		}
	}
}

func TestEncodeArgs(t *testing.T) {
	b, err := encodeArgs(nil, []any{"EVALSHA", "abc", 1, "{p:j\"1}", int64(30000), true})
	if err != nil {
		t.Fatal(err)
	}
	var req struct{ Args []any }
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatalf("encodeArgs = %s: %v", b, err)
	}
	if want := []any{"EVALSHA", "abc", 1.0, "{p:j\"1}", 30000.0, true}; !reflect.DeepEqual(req.Args, want) {
		t.Fatalf("encodeArgs decodes to %#v, want %#v", req.Args, want)
	}
	if _, err := encodeArgs(nil, []any{"SET", make(chan int)}); err == nil || !strings.Contains(err.Error(), "argument 1") {
		t.Fatalf("unencodable argument: err = %v", err)
	}
}

// The SHA cache answers the SHA1 of the text, per distinct text.
func TestScriptSHA(t *testing.T) {
	const a, b = "return 1", "return 2"
	if got := scriptSHA(a); got != "e0e1f9fabfc9d4800c877a703b823ac0578ff8db" {
		t.Fatalf("scriptSHA(%q) = %s", a, got)
	}
	if scriptSHA(a) == scriptSHA(b) || scriptSHA(strings.Clone(a)) != scriptSHA(a) {
		t.Fatal("scriptSHA mixes up scripts")
	}
}
