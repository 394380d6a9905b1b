package wire

// Reader walks a JSON object for the kit's hand-written decoders. It
// accepts what encoding/json.Marshal produces for the abi request types;
// anything else (an unknown or differently cased key, null, a float, a
// \u escape beyond ASCII, a syntax error) marks it failed and the caller
// decodes the whole input again with encoding/json, which then gives the
// standard result or error.
type Reader struct {
	b      []byte
	i      int
	failed bool
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Failed reports that the input left the fast path.
func (r *Reader) Failed() bool { return r.failed }

// Fail marks the input as not for the fast path (e.g. an unknown key).
func (r *Reader) Fail() { r.failed = true }

func (r *Reader) ws() {
	// Compact JSON has no white space: test once before entering a loop.
	if r.i >= len(r.b) || r.b[r.i] > ' ' {
		return
	}
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\n', '\r', '\t':
			r.i++
		default:
			return
		}
	}
}

func (r *Reader) peek() byte {
	r.ws()
	if r.i >= len(r.b) {
		r.failed = true
		return 0
	}
	return r.b[r.i]
}

// Object reads an object, calling field with each key; field must read
// the value (String, Int, Bool, Object) or call Fail.
func (r *Reader) Object(field func(key []byte)) {
	if r.failed || r.peek() != '{' {
		r.failed = true
		return
	}
	r.i++
	if r.peek() == '}' {
		r.i++
		return
	}
	for !r.failed {
		if r.peek() != '"' {
			r.failed = true
			return
		}
		start := r.i + 1
		end := start + nextSpecial(r.b[start:])
		if end >= len(r.b) || r.b[end] != '"' {
			r.failed = true // an escaped key: not one of ours
			return
		}
		r.i = end + 1
		if r.peek() != ':' {
			r.failed = true
			return
		}
		r.i++
		field(r.b[start:end])
		if r.failed {
			return
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return
		default:
			r.failed = true
		}
	}
}

// Array reads an array, calling elem with each element's index; elem
// must read the value or call Fail. It returns the number of elements.
func (r *Reader) Array(elem func(i int)) int {
	if r.failed || r.peek() != '[' {
		r.failed = true
		return 0
	}
	r.i++
	if r.peek() == ']' {
		r.i++
		return 0
	}
	n := 0
	for !r.failed {
		elem(n)
		n++
		if r.failed {
			return n
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return n
		default:
			r.failed = true
		}
	}
	return n
}

// End checks that nothing but white space follows the value.
func (r *Reader) End() bool {
	r.ws()
	if r.i != len(r.b) {
		r.failed = true
	}
	return !r.failed
}

// String reads a string.
func (r *Reader) String() string {
	if r.failed || r.peek() != '"' {
		r.failed = true
		return ""
	}
	s, n, ok := ParseString(r.b[r.i:])
	if !ok {
		r.failed = true
		return ""
	}
	r.i += n
	return s
}

// Int reads an integer of at most 18 digits (longer ones, fractions and
// exponents go to encoding/json).
func (r *Reader) Int() int64 {
	if r.failed {
		return 0
	}
	r.ws()
	neg := false
	if r.i < len(r.b) && r.b[r.i] == '-' {
		neg = true
		r.i++
	}
	start := r.i
	var v int64
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		v = v*10 + int64(r.b[r.i]-'0')
		r.i++
	}
	n := r.i - start
	if n == 0 || n > 18 || (n > 1 && r.b[start] == '0') {
		r.failed = true
		return 0
	}
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case '.', 'e', 'E':
			r.failed = true
			return 0
		}
	}
	if neg {
		v = -v
	}
	return v
}

// Bool reads true or false.
func (r *Reader) Bool() bool {
	if r.failed {
		return false
	}
	r.ws()
	rest := r.b[r.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		r.i += 4
		return true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		r.i += 5
		return false
	}
	r.failed = true
	return false
}
