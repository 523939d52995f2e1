package xroadcheck

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/xroad-lb/lbkit/agent/check"
)

// Memory fails when the machine's used memory ((MemTotal-MemAvailable)/MemTotal from
// meminfo, usually /proc/meminfo) is above thresholdPercent. X-Road measures the proxy's
// JVM heap; from outside the JVM the machine's memory is the closest honest measure.
func Memory(meminfo string, thresholdPercent float64) check.Func {
	return func(context.Context) error {
		used, err := usedPercent(meminfo)
		if err != nil {
			return check.Fail(MsgMemory, err)
		}
		if used > thresholdPercent {
			return check.Fail(MsgMemory, fmt.Errorf("%.1f%% used, threshold %.1f%%", used, thresholdPercent))
		}
		return nil
	}
}

func usedPercent(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total, avail float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = v
		case "MemAvailable:":
			avail = v
		}
	}
	if total <= 0 {
		return 0, fmt.Errorf("%s: no MemTotal", path)
	}
	return 100 * (total - avail) / total, nil
}
