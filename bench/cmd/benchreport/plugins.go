package main

import "errors"

// plugins measures plugin-call overheads (issue 3); not written yet.
func (b *bench) plugins() (string, error) { return "", errors.New("not written yet") }
