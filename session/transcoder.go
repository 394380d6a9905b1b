package session

import "github.com/wasmhls/wasmhls/transcode"

// defaultRun produces segments; Manager.run is a field so that a test in
// this package can observe runs.
var defaultRun = transcode.Run
