// Command loadgen drives NetBird-protocol relays (and a raw TCP splice) for
// the benchmarks in bench/. One subcommand per benchmark; progress goes to
// stderr, events and the final result to stdout as JSON lines.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

var base = time.Now()

// now is monotonic nanoseconds since start (one clock for sender and receiver).
func now() int64 { return int64(time.Since(base)) }

var outMu sync.Mutex

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	outMu.Unlock()
}

func event(name string, kv ...any) {
	m := map[string]any{"event": name, "atUnixMs": time.Now().UnixMilli()}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	emit(m)
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...) }

func fatal(format string, a ...any) {
	logf(format, a...)
	os.Exit(1)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Percentiles of nanosecond samples, in microseconds.
func percentiles(ns []int64) map[string]any {
	if len(ns) == 0 {
		return map[string]any{"count": 0}
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ns)))) - 1
		if i < 0 {
			i = 0
		}
		return round1(float64(ns[i]) / 1e3)
	}
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	return map[string]any{
		"count": len(ns), "p50Us": at(0.5), "p90Us": at(0.9), "p99Us": at(0.99), "p999Us": at(0.999),
		"maxUs": round1(float64(ns[len(ns)-1]) / 1e3), "meanUs": round1(sum / float64(len(ns)) / 1e3),
	}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func main() {
	if len(os.Args) < 2 {
		fatal("usage: loadgen throughput|idle|notify|failover|rolling [flags]")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "throughput":
		runThroughput(args)
	case "idle":
		runIdle(args)
	case "notify":
		runNotify(args)
	case "failover":
		runFailover(args)
	case "rolling":
		runRolling(args)
	default:
		fatal("unknown mode %q", os.Args[1])
	}
}
