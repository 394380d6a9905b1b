//go:build v2

package main

// A second build of the same guest with another sha256, so reload tests
// swap between different files.
func init() { version = "0.0.2" }
