// One NetBird agent (client/embed, netstack, no TUN) per process, driven over
// stdin/stdout with JSON lines so the test can freeze (SIGSTOP) and kill it.
//
// It serves TCP :7000 (reads until EOF, answers the SHA-256 of what it read)
// and UDP :7001 (echo). Commands, one per line:
//
//	status               → {"event":"status","ip":…,"pubKey":…,"peers":[…]}
//	tcp <ip> <bytes>     → {"event":"tcp","ok":…,"ms":…,"error":…}
//	udp <ip>             → {"event":"udp","ok":…,"ms":…,"error":…} (20 tries, 250 ms each)
//	stop                 → {"event":"stopped"} and exit
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
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

	lazy := false
	port := 0
	client, err := embed.New(embed.Options{
		DeviceName:            name,
		SetupKey:              key,
		ManagementURL:         mgmt,
		ConfigPath:            config,
		StatePath:             state,
		LogLevel:              logLevel,
		LogOutput:             os.Stderr,
		LazyConnectionEnabled: &lazy,
		WireguardPort:         &port,
		DisableClientRoutes:   true,
	})
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
	if err := serve(client); err != nil {
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
			go emit(tcpCheck(client, f[1], n))
		case "udp":
			go emit(udpCheck(client, f[1]))
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
		})
	}
	return map[string]any{"event": "status", "ip": stripMask(st.LocalPeerState.IP), "pubKey": st.LocalPeerState.PubKey, "peers": peers}
}

func serve(c *embed.Client) error {
	tl, err := c.ListenTCP(":7000")
	if err != nil {
		return fmt.Errorf("listen tcp: %w", err)
	}
	go func() {
		for {
			conn, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				h := sha256.New()
				_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
				if _, err := io.Copy(h, conn); err != nil {
					return
				}
				_, _ = conn.Write([]byte(hex.EncodeToString(h.Sum(nil))))
			}()
		}
	}()
	ul, err := c.ListenUDP(":7001")
	if err != nil {
		return fmt.Errorf("listen udp: %w", err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, addr, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = ul.WriteTo(buf[:n], addr)
		}
	}()
	return nil
}

func result(kind string, start time.Time, err error) map[string]any {
	r := map[string]any{"event": kind, "ok": err == nil, "ms": time.Since(start).Milliseconds()}
	if err != nil {
		r["error"] = err.Error()
	}
	return r
}

func tcpCheck(c *embed.Client, ip string, size int) map[string]any {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, "tcp", net.JoinHostPort(ip, "7000"))
	if err != nil {
		return result("tcp", start, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if _, err := conn.Write(data); err != nil {
		return result("tcp", start, err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		return result("tcp", start, err)
	}
	sum := sha256.Sum256(data)
	if string(got) != hex.EncodeToString(sum[:]) {
		return result("tcp", start, fmt.Errorf("checksum mismatch after %d bytes", size))
	}
	return result("tcp", start, nil)
}

func udpCheck(c *embed.Client, ip string) map[string]any {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, "udp", net.JoinHostPort(ip, "7001"))
	if err != nil {
		return result("udp", start, err)
	}
	defer conn.Close()
	msg := make([]byte, 512)
	_, _ = rand.Read(msg)
	buf := make([]byte, 2048)
	// Short tries: the restart scenarios time recovery by these echoes.
	for attempt := 0; attempt < 20; attempt++ {
		if _, err := conn.Write(msg); err != nil {
			return result("udp", start, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, err := conn.Read(buf)
		if err == nil && bytes.Equal(buf[:n], msg) {
			return result("udp", start, nil)
		}
	}
	return result("udp", start, fmt.Errorf("no echo in 20 tries"))
}
