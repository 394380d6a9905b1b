package redis

import (
	"encoding/json"
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
