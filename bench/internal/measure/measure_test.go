package measure

import (
	"testing"
	"time"
)

func TestOrderStatistics(t *testing.T) {
	v := []time.Duration{9, 1, 5, 3, 7, 2, 8, 4, 6, 10}
	if got := Median(v); got != 6 {
		t.Errorf("Median = %v; want 6 (upper middle of 10 values)", got)
	}
	if got := Percentile(v, 90); got != 9 {
		t.Errorf("Percentile 90 = %v; want 9", got)
	}
	if got := Percentile(v, 100); got != 10 {
		t.Errorf("Percentile 100 = %v; want 10", got)
	}
	if v[0] != 9 {
		t.Errorf("input reordered: %v", v)
	}
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("Median of floats = %v; want 2", got)
	}
}

func TestMs(t *testing.T) {
	if got := Ms(12345678*time.Nanosecond, 1); got != "12.3 ms" {
		t.Errorf("Ms(12.345678ms, 1) = %q; want %q", got, "12.3 ms")
	}
	if got := Ms(1500*time.Microsecond, 0); got != "2 ms" {
		t.Errorf("Ms(1.5ms, 0) = %q; want %q", got, "2 ms")
	}
}

func TestParseWrk(t *testing.T) {
	out := []byte("Running 5s test @ http://127.0.0.1:8080/\n  1 threads and 10 connections\n  Non-2xx or 3xx responses: 12\nRequests/sec:  41234.56\nTransfer/sec:      3.15MB\n")
	rps, non2xx, err := parseWrk(out)
	if err != nil || rps != 41234.56 || !non2xx {
		t.Errorf("parseWrk = %v, %v, %v; want 41234.56, true, nil", rps, non2xx, err)
	}
	if _, _, err := parseWrk([]byte("unable to connect to 127.0.0.1:8080 Connection refused\n")); err == nil {
		t.Error("parseWrk of an output without Requests/sec: nil error")
	}
}
