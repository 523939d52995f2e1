// Package measure holds what the benchmark commands share: order statistics, millisecond
// formatting, wrk's requests per second and the HAProxy version.
package measure

import (
	"cmp"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Median is the middle value of v (the upper one of an even count); v is not changed.
func Median[T cmp.Ordered](v []T) T { return Percentile(v, 50) }

// Percentile is the value at rank (len(v)-1)*p/100 of v in order (p from 0 to 100); v is not
// changed.
func Percentile[T cmp.Ordered](v []T, p int) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if p == 50 {
		return s[len(s)/2]
	}
	return s[(len(s)-1)*p/100]
}

// Ms formats d in milliseconds with the given number of decimals ("12.3 ms").
func Ms(d time.Duration, decimals int) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', decimals, 64) + " ms"
}

var rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// WrkRPS runs wrk with args and returns its requests per second, and whether wrk counted
// answers other than 2xx.
func WrkRPS(wrk string, args []string) (rps float64, non2xx bool, err error) {
	out, err := exec.Command(wrk, args...).CombinedOutput()
	if err != nil {
		return 0, false, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return parseWrk(out)
}

func parseWrk(out []byte) (float64, bool, error) {
	m := rpsRE.FindSubmatch(out)
	if m == nil {
		return 0, false, fmt.Errorf("wrk output without Requests/sec:\n%s", out)
	}
	rps, err := strconv.ParseFloat(string(m[1]), 64)
	return rps, strings.Contains(string(out), "Non-2xx"), err
}

// HAProxyVersion is the version haproxy -v reports ("?" when it cannot be run).
func HAProxyVersion() string {
	out, err := exec.Command("haproxy", "-v").Output()
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(out)); len(f) >= 3 {
		return f[2]
	}
	return "?"
}
