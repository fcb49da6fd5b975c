//go:build !race

package mmsession

const raceEnabled = false
