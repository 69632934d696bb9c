// Command interop drives NetBird's own relay client
// (github.com/netbirdio/netbird/shared/relay/client) against a relay server
// and prints one JSON line per scenario. See test/interop/README.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	log "github.com/sirupsen/logrus"
)

type config struct {
	urls            []string
	secret          string
	instanceURL     string
	mtu             int
	raceCount       int
	raceMaxFailures int
	deathCount      int
	offlineTimeout  time.Duration
	idle            time.Duration
	shutdownTimeout time.Duration
	exchangeCount   int
	rate            int
	clients         int
	pairCount       int
	pairRate        int
	logLevel        string
}

var cfg config

// Scenarios run by "all" (graceful-shutdown and service-pair need a controller,
// one that stops a relay when asked, one that steers over stdin, so they only
// run when named).
var allScenarios = []string{"connect", "exchange", "many-clients", "reconnect-race", "socket-death", "bad-tokens", "idle"}

var scenarios = map[string]func(r *result){
	"connect":           scenarioConnect,
	"exchange":          scenarioExchange,
	"many-clients":      scenarioManyClients,
	"reconnect-race":    scenarioReconnectRace,
	"socket-death":      scenarioSocketDeath,
	"bad-tokens":        scenarioBadTokens,
	"idle":              scenarioIdle,
	"graceful-shutdown": scenarioGracefulShutdown,
	"service-pair":      scenarioServicePair,
}

func main() {
	var urls, scenario string
	var child childConfig
	flag.StringVar(&urls, "urls", "", "comma-separated relay URLs, one per pod (rel://127.0.0.1:40001,...)")
	flag.StringVar(&cfg.secret, "secret", "", "relay auth secret")
	flag.StringVar(&cfg.instanceURL, "instance-url", "", "expected instance URL (the relay's exposed address)")
	flag.StringVar(&scenario, "scenario", "all", "scenario name, comma-separated names, or all")
	flag.IntVar(&cfg.mtu, "mtu", 1280, "MTU given to the relay client; exchange sizes go from 1 to this")
	flag.IntVar(&cfg.raceCount, "race-count", 1000, "reconnect-race iterations")
	flag.IntVar(&cfg.raceMaxFailures, "max-failures", 0, "stop reconnect-race / socket-death after this many failed iterations (0: never)")
	flag.IntVar(&cfg.deathCount, "death-count", 50, "socket-death iterations")
	flag.DurationVar(&cfg.offlineTimeout, "offline-timeout", 5*time.Second, "how long to wait for the 'peers went offline' notice")
	flag.DurationVar(&cfg.idle, "idle", 70*time.Second, "idle scenario: how long clients stay idle")
	flag.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 60*time.Second, "graceful-shutdown: how long to wait for the relay's close")
	flag.IntVar(&cfg.exchangeCount, "exchange-count", 2000, "exchange: packets each way")
	flag.IntVar(&cfg.rate, "rate", 2000, "exchange: packets per second per direction")
	flag.IntVar(&cfg.pairCount, "pair-count", 100, "many-clients: packets each way per pair")
	flag.IntVar(&cfg.pairRate, "pair-rate", 50, "many-clients: packets per second per direction per pair")
	flag.IntVar(&cfg.clients, "clients", 50, "many-clients: number of clients")
	flag.IntVar(&window, "window", 50, "exchange, many-clients: most packets in flight per direction (0: unbounded)")
	flag.StringVar(&cfg.logLevel, "log-level", "error", "NetBird client log level printed to stderr")
	flag.StringVar(&child.role, "child", "", "internal: run as a child peer (socket-death)")
	flag.StringVar(&child.url, "child-url", "", "internal")
	flag.StringVar(&child.key, "child-key", "", "internal")
	flag.StringVar(&child.peer, "child-peer", "", "internal")
	flag.Parse()

	setupLogging()

	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.urls = append(cfg.urls, u)
		}
	}
	if child.role != "" {
		os.Exit(runChild(child))
	}
	if len(cfg.urls) == 0 || cfg.secret == "" || cfg.instanceURL == "" {
		fmt.Fprintln(os.Stderr, "usage: interop -urls rel://h:p[,rel://h:p...] -secret S -instance-url rel://h:p [-scenario NAME|all]")
		os.Exit(2)
	}

	names := allScenarios
	if scenario != "all" {
		names = strings.Split(scenario, ",")
	}
	failed := false
	for _, name := range names {
		fn, ok := scenarios[strings.TrimSpace(name)]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown scenario %q\n", name)
			os.Exit(2)
		}
		r := newResult(strings.TrimSpace(name))
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.failf("panic: %v", p)
				}
			}()
			fn(r)
		}()
		r.emit()
		if !r.pass {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// relayURL returns the i-th relay URL, wrapping around.
func relayURL(i int) string { return cfg.urls[i%len(cfg.urls)] }

// result is one scenario's JSON line.
type result struct {
	name    string
	start   time.Time
	pass    bool
	reason  string
	mu      sync.Mutex
	metrics map[string]any
}

func newResult(name string) *result {
	return &result{name: name, start: time.Now(), pass: true, metrics: map[string]any{}}
}

func (r *result) failf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pass {
		r.pass = false
		r.reason = fmt.Sprintf(format, args...)
	}
}

func (r *result) set(k string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics[k] = v
}

func (r *result) emit() {
	out := map[string]any{}
	for k, v := range r.metrics {
		out[k] = v
	}
	out["scenario"] = r.name
	out["pass"] = r.pass
	out["reason"] = r.reason
	out["durationMs"] = time.Since(r.start).Milliseconds()
	out["urls"] = len(cfg.urls)
	emitLine(out)
}

var stdoutMu sync.Mutex

func emitLine(v any) {
	b, _ := json.Marshal(v)
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

// closeByServer counts the NetBird client's "relay connection close by
// server" log entries: the client logs it (at debug level) exactly when it
// receives a close message (type 4) from the relay. The public API reports a
// disconnect either way; this tells a close message from a dropped socket.
var closeByServer atomic.Int64

type logHook struct{ printLevel log.Level }

func (h *logHook) Levels() []log.Level { return log.AllLevels }

func (h *logHook) Fire(e *log.Entry) error {
	if e.Message == "relay connection close by server" {
		closeByServer.Add(1)
	}
	if e.Level <= h.printLevel {
		line, err := e.String()
		if err == nil {
			fmt.Fprint(os.Stderr, line)
		}
	}
	return nil
}

func setupLogging() {
	lvl, err := log.ParseLevel(cfg.logLevel)
	if err != nil {
		lvl = log.ErrorLevel
	}
	log.SetLevel(log.DebugLevel)
	log.SetOutput(io.Discard)
	log.AddHook(&logHook{printLevel: lvl})
}
