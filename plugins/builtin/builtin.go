// Package builtin embeds the built-in plugins (plugins/builtin/wasm/*.wasm,
// built by `make plugins`) so that a bare wasmhls binary needs no plugin
// files. The directory is embedded whole so a clean clone still compiles; a
// plugin that was not built is reported when it is asked for.
package builtin

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed wasm
var files embed.FS

// Prefix marks a built-in plugin in a plugin path: builtin:NAME.
const Prefix = "builtin:"

// Open returns the module bytes of the built-in plugin name (without the
// builtin: prefix, e.g. "store-null").
func Open(name string) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return nil, fmt.Errorf("invalid built-in plugin name %q", name)
	}
	b, err := files.ReadFile(path.Join("wasm", name+".wasm"))
	if errors.Is(err, fs.ErrNotExist) {
		if known(name) {
			return nil, fmt.Errorf("built-in plugin %s is not built: run make plugins", name)
		}
		return nil, fmt.Errorf("no built-in plugin %q (built-in: %s)", name, strings.Join(Names, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("read built-in plugin %s: %w", name, err)
	}
	return b, nil
}

// Names lists the plugins `make plugins` builds.
var Names = []string{"cleanup-lease", "store-null", "store-redis", "takeover-lease"}

func known(name string) bool {
	i := sort.SearchStrings(Names, name)
	return i < len(Names) && Names[i] == name
}
