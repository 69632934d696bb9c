package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netbirdio/netbird/client/embed"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// A TCP transfer the :7000 server is reading or has read; kept so a failed
// sender can be told how far its bytes got (the receiver's count is what
// TCP delivered end to end).
type transfer struct {
	from    string
	started time.Time
	read    atomic.Int64
	mu      sync.Mutex
	endedMs int64
	err     string
}

// The last transfers the server saw, bounded.
type transferLog struct {
	mu   sync.Mutex
	list []*transfer
}

const keptTransfers = 64

func (l *transferLog) add(t *transfer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.list) == keptTransfers {
		l.list = append(l.list[:0], l.list[1:]...)
	}
	l.list = append(l.list, t)
}

func (l *transferLog) snapshot() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]map[string]any, 0, len(l.list))
	for _, t := range l.list {
		t.mu.Lock()
		out = append(out, map[string]any{
			"from": t.from, "startedMs": t.started.UnixMilli(), "read": t.read.Load(),
			"endedMs": t.endedMs, "error": t.err,
		})
		t.mu.Unlock()
	}
	return out
}

func serve(c *embed.Client) (*transferLog, error) {
	tl, err := c.ListenTCP(":7000")
	if err != nil {
		return nil, fmt.Errorf("listen tcp: %w", err)
	}
	received := &transferLog{}
	go func() {
		for {
			conn, err := tl.Accept()
			if err != nil {
				return
			}
			go receive(conn, received)
		}
	}()
	ul, err := c.ListenUDP(":7001")
	if err != nil {
		return nil, fmt.Errorf("listen udp: %w", err)
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
	return received, nil
}

func result(kind string, start time.Time, err error) map[string]any {
	r := map[string]any{"event": kind, "ok": err == nil, "ms": time.Since(start).Milliseconds()}
	if err != nil {
		r["error"] = err.Error()
	}
	return r
}

// The :7000 stream: the sender's bytes one way; back, the receiver's running
// count (8 bytes, big endian) every ackEvery bytes, and at EOF the count with
// doneBit set followed by the SHA-256 of everything read.
const (
	ackEvery = 16 * 1024
	doneBit  = uint64(1) << 63
	tcpChunk = 16 * 1024
)

func receive(conn net.Conn, received *transferLog) {
	defer conn.Close()
	t := &transfer{from: conn.RemoteAddr().String(), started: time.Now()}
	received.add(t)
	h := sha256.New()
	_ = conn.SetDeadline(time.Now().Add(180 * time.Second))
	buf := make([]byte, 32*1024)
	var ack [8]byte
	var total int64
	var err error
	for {
		var n int
		n, err = conn.Read(buf)
		h.Write(buf[:n])
		before := total
		total += int64(n)
		t.read.Store(total)
		if total/ackEvery > before/ackEvery {
			binary.BigEndian.PutUint64(ack[:], uint64(total))
			if _, werr := conn.Write(ack[:]); werr != nil {
				err = werr
				break
			}
		}
		if err != nil {
			break
		}
	}
	t.mu.Lock()
	t.endedMs = time.Now().UnixMilli()
	if err != io.EOF {
		t.err = err.Error()
	}
	t.mu.Unlock()
	if err != io.EOF {
		return
	}
	binary.BigEndian.PutUint64(ack[:], uint64(total)|doneBit)
	_, _ = conn.Write(append(ack[:], h.Sum(nil)...))
}

type transferEnd struct {
	sum []byte
	err error
}

// tcpCheck sends size random bytes and expects their SHA-256 back. With
// window > 0 it keeps at most window bytes beyond what the receiver has
// counted (see README, Compatibility: an unpaced 1 MiB burst overflows the
// agent's own per-peer relay queue). On failure it says how far it got:
// bytes written, bytes the receiver counted, the phase, and the local port.
func tcpCheck(c *embed.Client, ip string, size int, timeout time.Duration, window int) map[string]any {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := c.Dial(ctx, "tcp", net.JoinHostPort(ip, "7000"))
	if err != nil {
		r := result("tcp", start, err)
		r["phase"] = "dial"
		return r
	}
	defer conn.Close()
	dialMs := time.Since(start).Milliseconds()
	_ = conn.SetDeadline(start.Add(timeout))
	data := make([]byte, size)
	_, _ = rand.Read(data)
	var acked atomic.Int64
	progress := make(chan struct{}, 1)
	ended := make(chan transferEnd, 1)
	go func() {
		var b [8]byte
		for {
			if _, err := io.ReadFull(conn, b[:]); err != nil {
				ended <- transferEnd{err: err}
				return
			}
			v := binary.BigEndian.Uint64(b[:])
			acked.Store(int64(v &^ doneBit))
			if v&doneBit != 0 {
				sum := make([]byte, sha256.Size)
				_, err := io.ReadFull(conn, sum)
				ended <- transferEnd{sum: sum, err: err}
				return
			}
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	written := 0
	fail := func(phase string, err error) map[string]any {
		r := result("tcp", start, err)
		r["phase"], r["written"], r["acked"], r["dialMs"], r["local"] = phase, written, acked.Load(), dialMs, conn.LocalAddr().String()
		return r
	}
	for written < size {
		for window > 0 && written-int(acked.Load()) >= window {
			select {
			case <-progress:
			case end := <-ended:
				return fail("window", fmt.Errorf("stream ended early: %v", end.err))
			}
		}
		n, err := conn.Write(data[written:min(written+tcpChunk, size)])
		written += n
		if err != nil {
			return fail("write", err)
		}
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	writtenMs := time.Since(start).Milliseconds()
	end := <-ended
	if end.err != nil {
		r := fail("read", end.err)
		r["writtenMs"] = writtenMs
		return r
	}
	sum := sha256.Sum256(data)
	if !bytes.Equal(end.sum, sum[:]) {
		return fail("verify", fmt.Errorf("checksum mismatch after %d bytes", size))
	}
	r := result("tcp", start, nil)
	r["dialMs"], r["writtenMs"] = dialMs, writtenMs
	return r
}

// echoCheck sends a random message up to 20 times, 250 ms apart, until it comes back.
// Short tries: the restart scenarios time recovery by these echoes.
func echoCheck(kind string, c *embed.Client, network, address string, msg []byte, echoed func(sent, got []byte) bool) map[string]any {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, network, address)
	if err != nil {
		return result(kind, start, err)
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	for attempt := 0; attempt < 20; attempt++ {
		if _, err := conn.Write(msg); err != nil {
			return result(kind, start, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, err := conn.Read(buf)
		if err == nil && echoed(msg, buf[:n]) {
			return result(kind, start, nil)
		}
	}
	return result(kind, start, fmt.Errorf("no echo in 20 tries"))
}

func udpCheck(c *embed.Client, ip string) map[string]any {
	msg := make([]byte, 512)
	_, _ = rand.Read(msg)
	return echoCheck("udp", c, "udp", net.JoinHostPort(ip, "7001"), msg, bytes.Equal)
}

// pingCheck sends ICMP echo requests through the netstack's ping socket; the
// peer's netstack answers them itself (no listener involved).
func pingCheck(c *embed.Client, ip string) map[string]any {
	payload := make([]byte, 56)
	_, _ = rand.Read(payload)
	req, err := (&icmp.Message{
		Type: ipv4.ICMPTypeEcho,
		Body: &icmp.Echo{ID: 1, Seq: 1, Data: payload},
	}).Marshal(nil)
	if err != nil {
		return result("ping", time.Now(), err)
	}
	matches := func(_, got []byte) bool {
		reply, err := icmp.ParseMessage(1, got)
		if err != nil || reply.Type != ipv4.ICMPTypeEchoReply {
			return false
		}
		echo, ok := reply.Body.(*icmp.Echo)
		// The ping socket picks its own echo ID, so the payload is what identifies our echo.
		return ok && bytes.Equal(echo.Data, payload)
	}
	// Once in about 14 suite runs (on NetBird's relay) one ping socket got no reply in 5 s while
	// TCP and UDP of the same pair worked; a new socket has a new echo ID, which is what
	// NetBird's userspace firewall tracks ICMP by. Up to 3 sockets; how many it took is reported.
	start := time.Now()
	var last map[string]any
	for socket := 1; socket <= 3; socket++ {
		last = echoCheck("ping", c, "ping4", ip, req, matches)
		last["sockets"] = socket
		if last["ok"] == true {
			break
		}
	}
	last["ms"] = time.Since(start).Milliseconds()
	return last
}
