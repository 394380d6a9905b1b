package main

import "errors"

// ha measures failover stalls and the cost of HA (issue 4); not written yet.
func (b *bench) ha() (string, error) { return "", errors.New("not written yet") }
