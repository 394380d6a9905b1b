package redis

import (
	"crypto/sha1"
	"encoding/hex"
	"unsafe"
)

// shas caches each script's SHA1 hex. It is keyed by the address and
// length of the script's bytes, not by its text: hashing or comparing a
// few KB in wasm is a loop over every byte, while scripts are nearly always
// constants, whose address never changes. An entry keeps its script alive,
// so no other string can take that address while the entry exists, and
// the same address and length then mean the same bytes. The cache is
// per instance (an instance is single-threaded) and bounded, for plugins
// that build scripts at run time.
var shas = map[scriptID]shaEntry{}

const maxCachedScripts = 256

type scriptID struct {
	p *byte
	n int
}

type shaEntry struct {
	src string // keeps the bytes at scriptID.p alive
	sha string
}

func scriptSHA(src string) string {
	id := scriptID{unsafe.StringData(src), len(src)}
	if e, ok := shas[id]; ok {
		return e.sha
	}
	sum := sha1.Sum([]byte(src))
	sha := hex.EncodeToString(sum[:])
	if len(shas) >= maxCachedScripts {
		clear(shas)
	}
	shas[id] = shaEntry{src: src, sha: sha}
	return sha
}
