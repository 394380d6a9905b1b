//go:build !redis

package main

const redisEnabled = false

func redisOp([]byte) uint64 { return reply("error", "built without redis", nil) }
