// Package units prints sizes and durations for operators, in the units our settings take
// (lag-limit = 16MB, durations as Go writes them).
package units

import (
	"strconv"
	"time"
)

// Bytes prints n in 1024-based B, kB, MB, GB, the units of [replication] lag-limit:
// "0B", "1023B", "1.5kB", "16.0MB".
func Bytes(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return strconv.FormatInt(n, 10) + "B"
	case n < k*k:
		return strconv.FormatFloat(float64(n)/k, 'f', 1, 64) + "kB"
	case n < k*k*k:
		return strconv.FormatFloat(float64(n)/(k*k), 'f', 1, 64) + "MB"
	}
	return strconv.FormatFloat(float64(n)/(k*k*k), 'f', 1, 64) + "GB"
}

// Seconds prints s seconds rounded to whole seconds in Go's form: "4s", "5m0s".
func Seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
