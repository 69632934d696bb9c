package main

// A minimal WebSocket client (RFC 6455) that does exactly what the relay
// protocol needs: binary frames, ping/pong, close. Writes go into a bufio
// buffer and leave in batches on Flush, so the generator costs one syscall per
// batch rather than per message. Client frames carry the mask bit with an
// all-zero key: valid on the wire, and the server still runs its unmask pass.

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

type Conn struct {
	c   net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer
	wmu sync.Mutex
	buf []byte
	raw bool
}

// hostPort turns rel://h:p, ws://h:p/relay or h:p into h:p.
func hostPort(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

func dialTCP(addr, local string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	return d.Dial("tcp", addr)
}

// DialRaw opens a plain TCP connection (for the splice baseline).
func DialRaw(addr, local string, rbuf, wbuf int, timeout time.Duration) (*Conn, error) {
	c, err := dialTCP(hostPort(addr), local, timeout)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, br: bufio.NewReaderSize(c, rbuf), bw: bufio.NewWriterSize(c, wbuf), raw: true}, nil
}

// DialWS opens a WebSocket to ws://addr/relay.
func DialWS(addr, local string, rbuf, wbuf int, timeout time.Duration) (*Conn, error) {
	hp := hostPort(addr)
	c, err := dialTCP(hp, local, timeout)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	_ = c.SetDeadline(time.Now().Add(timeout))
	req := "GET /relay HTTP/1.1\r\nHost: " + hp + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + k + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, rbuf)
	status, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		c.Close()
		return nil, fmt.Errorf("upgrade refused: %s", strings.TrimSpace(status))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("upgrade headers: %w", err)
		}
		if line == "\r\n" {
			break
		}
	}
	_ = c.SetDeadline(time.Time{})
	return &Conn{c: c, br: br, bw: bufio.NewWriterSize(c, wbuf)}, nil
}

// Append queues one message (caller holds wmu when several goroutines write).
func (w *Conn) Append(p []byte) {
	if w.raw {
		_, _ = w.bw.Write(p)
		return
	}
	var hdr [14]byte
	n := len(p)
	hdr[0] = 0x82
	i := 2
	switch {
	case n < 126:
		hdr[1] = 0x80 | byte(n)
	case n < 65536:
		hdr[1] = 0x80 | 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		i = 4
	default:
		hdr[1] = 0x80 | 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		i = 10
	}
	i += 4 // zero mask key
	_, _ = w.bw.Write(hdr[:i])
	_, _ = w.bw.Write(p)
}

func (w *Conn) Flush() error { return w.bw.Flush() }

// Send writes one message and flushes, under the write lock.
func (w *Conn) Send(p []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.Append(p)
	return w.bw.Flush()
}

func (w *Conn) Close() error { return w.c.Close() }

var errClosed = errors.New("websocket closed")

// Read returns the next data message; the slice is valid until the next Read.
// Pings are answered, pongs skipped, a close frame ends the stream.
func (w *Conn) Read() ([]byte, error) {
	for {
		h, err := w.br.Peek(2)
		if err != nil {
			return nil, err
		}
		b0, b1 := h[0], h[1]
		_, _ = w.br.Discard(2)
		op := b0 & 0x0f
		n := int(b1 & 0x7f)
		switch n {
		case 126:
			e, err := w.br.Peek(2)
			if err != nil {
				return nil, err
			}
			n = int(binary.BigEndian.Uint16(e))
			_, _ = w.br.Discard(2)
		case 127:
			e, err := w.br.Peek(8)
			if err != nil {
				return nil, err
			}
			n = int(binary.BigEndian.Uint64(e))
			_, _ = w.br.Discard(8)
		}
		var mask [4]byte
		masked := b1&0x80 != 0
		if masked {
			if _, err := io.ReadFull(w.br, mask[:]); err != nil {
				return nil, err
			}
		}
		if n > 1<<20 {
			return nil, fmt.Errorf("frame too large: %d", n)
		}
		if cap(w.buf) < n {
			w.buf = make([]byte, n)
		}
		p := w.buf[:n]
		if _, err := io.ReadFull(w.br, p); err != nil {
			return nil, err
		}
		if masked {
			for i := range p {
				p[i] ^= mask[i&3]
			}
		}
		if b0&0x80 == 0 {
			return nil, errors.New("fragmented frames are not supported")
		}
		switch op {
		case 0x1, 0x2:
			return p, nil
		case 0x8:
			return nil, errClosed
		case 0x9:
			w.wmu.Lock()
			var hdr [6]byte
			hdr[0] = 0x8A
			hdr[1] = 0x80 | byte(n)
			_, _ = w.bw.Write(hdr[:])
			_, _ = w.bw.Write(p)
			_ = w.bw.Flush()
			w.wmu.Unlock()
		}
	}
}

// ReadRecord reads one fixed-size record from a raw TCP stream.
func (w *Conn) ReadRecord(size int) ([]byte, error) {
	if cap(w.buf) < size {
		w.buf = make([]byte, size)
	}
	p := w.buf[:size]
	if _, err := io.ReadFull(w.br, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Buffered reports whether more input is already in memory (no syscall needed).
func (w *Conn) Buffered() int { return w.br.Buffered() }
