package wire

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// samples mixes plain runs longer and shorter than a word with every kind
// of byte the escaper and the parser treat specially.
func samples() []string {
	out := []string{"", "a", "ok", "12345678", "123456789", `"`, `\`, "\n", "\x00", "\x1f", "é", "日本語",
		`{"status":"ok","record":{"id":"job-1","owner":"http://a/b?c=d&e<f>"}}`,
		strings.Repeat("x", 63) + `"` + strings.Repeat("y", 17) + "\t",
		"local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000\n",
	}
	pieces := []string{"a", "bcdefghij", `"`, `\`, "\n", "\r", "\t", "\x01", "/", "é", "\u2028", "<", "}"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var sb strings.Builder
		for range r.IntN(40) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		out = append(out, sb.String())
	}
	return out
}

func TestAppendStringRoundTripsThroughEncodingJSON(t *testing.T) {
	for _, s := range samples() {
		b := AppendString([]byte("x"), s)[1:]
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("AppendString(%q) = %s: not JSON: %v", s, b, err)
		}
		if got != s {
			t.Fatalf("AppendString(%q) = %s decodes to %q", s, b, got)
		}
	}
}

func TestParseStringAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range samples() {
		// Our own encoding must always take the fast path.
		enc := AppendString(nil, s)
		got, n, ok := ParseString(append(enc, `,"next":1}`...))
		if !ok || got != s || n != len(enc) {
			t.Fatalf("ParseString(%s) = %q, %d, %v; want %q, %d, true", enc, got, n, ok, s, len(enc))
		}
		// encoding/json's (with \u003c and \u2028 escapes): either the
		// same answer or a refusal, never a different string.
		std, _ := json.Marshal(s)
		if got, n, ok := ParseString(std); ok && (got != s || n != len(std)) {
			t.Fatalf("ParseString(%s) = %q, %d; want %q, %d", std, got, n, s, len(std))
		}
	}
}

func TestParseStringRefusesBadInput(t *testing.T) {
	for _, in := range []string{``, `x`, `"`, `"abc`, `"abc\`, "\"a\x01\"", `"\u00e9"`, `"\u00"`, `"\u00zz"`, `"\q"`, `"12345678901234567`} {
		if s, _, ok := ParseString([]byte(in)); ok {
			t.Errorf("ParseString(%q) accepted, = %q", in, s)
		}
	}
}

func TestAppendArg(t *testing.T) {
	var b []byte
	var err error
	for _, a := range []any{"k\"1", 7, int64(-3), true, 1.5, nil} {
		if b, err = AppendArg(append(b, ','), a); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := string(b), `,"k\"1",7,-3,true,1.5,null`; got != want {
		t.Fatalf("AppendArg: %s, want %s", got, want)
	}
	if _, err := AppendArg(nil, func() {}); err == nil {
		t.Fatal("AppendArg of a func succeeded")
	}
}

// TestNextSpecialMatchesByteLoop checks the eight-bytes-at-a-time search
// against the obvious loop on random bytes, high bytes included.
func TestNextSpecialMatchesByteLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{'a', 'z', ' ', '"', '\\', 0, 0x1f, 0x20, 0x7f, 0x80, 0xff, 0xa2, 0xdc}
	for range 5000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
			if r.IntN(3) > 0 {
				b[i] = 'a' + byte(r.IntN(26))
			}
		}
		want := len(b)
		for i, c := range b {
			if c < 0x20 || c == '"' || c == '\\' {
				want = i
				break
			}
		}
		if got := nextSpecial(b); got != want {
			t.Fatalf("nextSpecial(%q) = %d, want %d", b, got, want)
		}
		if got := nextSpecialString(string(b)); got != want {
			t.Fatalf("nextSpecialString(%q) = %d, want %d", b, got, want)
		}
	}
}

func TestReaderArray(t *testing.T) {
	r := NewReader([]byte(` ["ok", -12 ,"a\"b", true]`))
	var s1, s2 string
	var n int64
	var b bool
	count := r.Array(func(i int) {
		switch i {
		case 0:
			s1 = r.String()
		case 1:
			n = r.Int()
		case 2:
			s2 = r.String()
		case 3:
			b = r.Bool()
		default:
			r.Fail()
		}
	})
	if !r.End() || count != 4 || s1 != "ok" || n != -12 || s2 != `a"b` || !b {
		t.Fatalf("Array: count %d, %q %d %q %v, failed %v", count, s1, n, s2, b, r.Failed())
	}
	for _, in := range []string{`[`, `[1,]`, `[1 2]`, `{}`, `[null]`, `[1]x`} {
		r := NewReader([]byte(in))
		r.Array(func(int) { r.Int() })
		if r.End() {
			t.Errorf("Array accepted %s", in)
		}
	}
	if r := NewReader([]byte(`[]`)); r.Array(func(int) { r.Fail() }) != 0 || !r.End() {
		t.Error("empty array refused")
	}
}
