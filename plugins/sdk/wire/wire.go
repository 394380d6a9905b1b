// Package wire holds the guest kit's hand-written JSON pieces for the hot
// path of a plugin call. Inside wasm a call's cost is about the number of
// loop iterations it runs (with the host's call deadline on, wazero leaves
// the compiled guest at every loop header to check for cancellation), and
// encoding/json spends several iterations per byte (validity scan, then
// decode, then escaping). These helpers look at strings eight bytes per
// iteration and copy the plain runs in bulk (memory.copy), so a string costs
// about len/8 iterations. Anything unusual falls back to encoding/json so
// the output is always standard JSON. One difference remains: string bytes
// are taken and written as they are, where encoding/json would replace
// invalid UTF-8 with U+FFFD; the host encodes with encoding/json, so what
// it sends is valid, and what it receives it decodes with that same
// replacement.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
)

const (
	lo = 0x0101010101010101
	hi = 0x8080808080808080
)

// specialMask marks (high bit of the byte) the bytes of v that need
// attention in a JSON string: a control byte (< 0x20), '"' or '\\'. The
// lowest marked byte is exact (x - lo*n) & ^x & hi finds bytes of x below
// n; a borrow can only mark bytes above a true one, which the callers never
// look at.
func specialMask(v uint64) uint64 {
	q := v ^ (lo * '"')
	bs := v ^ (lo * '\\')
	return ((v-lo*0x20)&^v | (q-lo)&^q | (bs-lo)&^bs) & hi
}

// nextSpecial returns the index of the first byte of b that is a control
// byte, '"' or '\\', or len(b): eight bytes per loop iteration.
func nextSpecial(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if m := specialMask(binary.LittleEndian.Uint64(b[i : i+8])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return len(b)
}

// nextSpecialString is nextSpecial for a string.
func nextSpecialString(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if m := specialMask(load64(s, i)); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return len(s)
}

// load64 reads s[i:i+8] little-endian without converting s to a slice.
func load64(s string, i int) uint64 {
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// AppendString appends s as a JSON string: '"', '\\' and control bytes are
// escaped, everything else (UTF-8 included) is copied as it is, which every
// JSON decoder accepts.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	for {
		n := nextSpecialString(s)
		b = append(b, s[:n]...)
		if n == len(s) {
			return append(b, '"')
		}
		if c := s[n]; c == '"' || c == '\\' {
			b = append(b, '\\', c)
		} else {
			b = appendControl(b, c)
		}
		s = s[n+1:]
	}
}

func appendControl(b []byte, c byte) []byte {
	switch c {
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}

// ParseString decodes the JSON string at the start of b (b[0] must be '"')
// and returns it with the number of bytes it took. ok is false for input
// this fast path does not handle (\u escapes beyond ASCII, a missing closing quote, a
// raw control byte); the caller then uses encoding/json, which also
// reports errors properly.
func ParseString(b []byte) (s string, n int, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", 0, false
	}
	i := 1
	var out []byte // only allocated when there are escapes
	start := 1
	for {
		i += nextSpecial(b[i:])
		if i >= len(b) {
			return "", 0, false
		}
		c := b[i]
		switch {
		case c == '"':
			if out == nil {
				return string(b[start:i]), i + 1, true
			}
			return string(append(out, b[start:i]...)), i + 1, true
		case c == '\\':
			if i+1 >= len(b) {
				return "", 0, false
			}
			var r byte
			switch b[i+1] {
			case '"', '\\', '/':
				r = b[i+1]
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'u': // ASCII only (\u003c from HTML escaping, control bytes)
				if i+6 > len(b) {
					return "", 0, false
				}
				v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
				if err != nil || v >= 0x80 {
					return "", 0, false // other code points, surrogates: encoding/json
				}
				out = append(append(out, b[start:i]...), byte(v))
				i += 6
				start = i
				continue
			default:
				return "", 0, false
			}
			if out == nil {
				out = make([]byte, 0, len(b)) // one allocation for all escapes
			}
			out = append(append(out, b[start:i]...), r)
			i += 2
			start = i
		default: // a raw control byte
			return "", 0, false
		}
	}
}

// AppendArg appends one Redis argument as JSON: strings escaped, integers
// and bools written directly, anything else through encoding/json.
func AppendArg(b []byte, a any) ([]byte, error) {
	switch v := a.(type) {
	case string:
		return AppendString(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	}
	j, err := json.Marshal(a)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}
