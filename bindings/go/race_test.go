//go:build race

package mmsession

// raceEnabled: this test binary runs under the race detector, whose own memory grows with
// every session (it keeps records of each object and lock it has seen).
const raceEnabled = true
