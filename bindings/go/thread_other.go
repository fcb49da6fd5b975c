//go:build !linux

package mmsession

/*
#include <pthread.h>
#include <stdint.h>

static uintptr_t mmgo_thread(void) { return (uintptr_t)pthread_self(); }
*/
import "C"

// threadID names the calling OS thread.
func threadID() uintptr { return uintptr(C.mmgo_thread()) }
