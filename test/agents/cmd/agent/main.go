// One NetBird agent (client/embed, netstack, no TUN) per process, driven over
// stdin/stdout with JSON lines so the test can freeze (SIGSTOP) and kill it.
//
// It serves TCP :7000 (reads until EOF, answers the SHA-256 of what it read)
// and UDP :7001 (echo). Commands, one per line:
//
//	status               → {"event":"status","ip":…,"pubKey":…,"peers":[…]}
//	tcp <ip> <bytes> [seconds] [window] → {"event":"tcp","ok":…,"ms":…,"written":…,"acked":…,"error":…}
//	udp <ip>             → {"event":"udp","ok":…,"ms":…,"error":…} (20 tries, 250 ms each)
//	ping <ip>            → {"event":"ping","ok":…,"ms":…,"error":…} (ICMP echo, 20 tries)
//	received             → {"event":"received","transfers":[…]} what TCP :7000 read, newest last
//	stop                 → {"event":"stopped"} and exit
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netbirdio/netbird/client/embed"
)

var outMu sync.Mutex

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = os.Stdout.Write(append(b, '\n'))
}

func main() {
	var key, mgmt, name, config, state, logLevel string
	flag.StringVar(&key, "setup-key", "", "setup key")
	flag.StringVar(&mgmt, "management-url", "", "management URL")
	flag.StringVar(&name, "name", "agent", "device name")
	flag.StringVar(&config, "config", "", "config file (keeps the WireGuard key: same file, same peer)")
	flag.StringVar(&state, "state", "", "state file")
	flag.StringVar(&logLevel, "log-level", "info", "NetBird log level (stderr)")
	flag.Parse()

	client, err := embed.New(options(key, mgmt, name, config, state, logLevel))
	if err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	err = client.Start(ctx)
	cancel()
	if err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		os.Exit(1)
	}
	received, err := serve(client)
	if err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		os.Exit(1)
	}
	st, _ := client.Status()
	emit(map[string]any{"event": "started", "ip": stripMask(st.LocalPeerState.IP), "pubKey": st.LocalPeerState.PubKey})

	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "status":
			emit(status(client))
		case "tcp":
			n, _ := strconv.Atoi(f[2])
			timeout, window := 30*time.Second, 0
			if len(f) > 3 {
				s, _ := strconv.Atoi(f[3])
				timeout = time.Duration(s) * time.Second
			}
			if len(f) > 4 {
				window, _ = strconv.Atoi(f[4])
			}
			go emit(tcpCheck(client, f[1], n, timeout, window))
		case "udp":
			go emit(udpCheck(client, f[1]))
		case "ping":
			go emit(pingCheck(client, f[1]))
		case "received":
			emit(map[string]any{"event": "received", "transfers": received.snapshot()})
		case "stop":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = client.Stop(ctx)
			cancel()
			emit(map[string]any{"event": "stopped"})
			return
		}
	}
}

func stripMask(ip string) string { return strings.SplitN(ip, "/", 2)[0] }

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func status(c *embed.Client) map[string]any {
	st, err := c.Status()
	if err != nil {
		return map[string]any{"event": "status", "error": err.Error()}
	}
	peers := []map[string]any{}
	for _, p := range st.Peers {
		peers = append(peers, map[string]any{
			"ip": stripMask(p.IP), "pubKey": p.PubKey, "connStatus": p.ConnStatus.String(),
			"relayed": p.Relayed, "relayServerAddress": p.RelayServerAddress,
			// For failure reports: when the status last changed, the last WireGuard handshake, bytes.
			"connStatusUpdateMs": unixMs(p.ConnStatusUpdate), "lastHandshakeMs": unixMs(p.LastWireguardHandshake),
			"bytesTx": p.BytesTx, "bytesRx": p.BytesRx,
		})
	}
	return map[string]any{"event": "status", "ip": stripMask(st.LocalPeerState.IP), "pubKey": st.LocalPeerState.PubKey, "peers": peers}
}
