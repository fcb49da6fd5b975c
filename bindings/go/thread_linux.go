package mmsession

import "syscall"

// threadID names the calling OS thread (gettid, a system call that leaves the Go scheduler
// alone, unlike a cgo call).
func threadID() uintptr { return uintptr(syscall.Gettid()) }
