package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	auth "github.com/netbirdio/netbird/shared/relay/auth/hmac"
	authv2 "github.com/netbirdio/netbird/shared/relay/auth/hmac/v2"
	relayclient "github.com/netbirdio/netbird/shared/relay/client"
)

// newTokenStore builds the relay auth token exactly as NetBird's management
// server does (management/internals/shared/grpc/token_mgr.go): an HMAC v2
// generator keyed with SHA-256 of the shared secret, handed to the client
// through auth.Token{Payload, base64 Signature}.
func newTokenStore(secret string, ttl time.Duration) (*auth.TokenStore, error) {
	hashed := sha256.Sum256([]byte(secret))
	gen, err := authv2.NewGenerator(authv2.AuthAlgoHMACSHA256, hashed[:], ttl)
	if err != nil {
		return nil, fmt.Errorf("token generator: %w", err)
	}
	tok, err := gen.GenerateToken()
	if err != nil {
		return nil, fmt.Errorf("generate token: %w", err)
	}
	store := &auth.TokenStore{}
	if err := store.UpdateToken(&auth.Token{
		Payload:   string(tok.Payload),
		Signature: base64.StdEncoding.EncodeToString(tok.Signature),
	}); err != nil {
		return nil, fmt.Errorf("update token: %w", err)
	}
	return store, nil
}

// newPeerKey returns a random string shaped like a WireGuard public key, the
// identifier NetBird clients hash into their relay peer ID.
func newPeerKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// peer is one NetBird relay client (relayclient.Client) plus the signals the
// scenarios need: whether its relay connection dropped.
type peer struct {
	name   string
	key    string
	url    string
	client *relayclient.Client
	ctx    context.Context
	cancel context.CancelFunc

	disconnectedOnce sync.Once
	disconnected     chan struct{}
	disconnectedAt   time.Time
}

func newPeer(name, url, key string, store *auth.TokenStore) *peer {
	// The context given to Connect lives as long as the client: the client
	// tears its connection down when it is cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{
		name:         name,
		key:          key,
		url:          url,
		client:       relayclient.NewClient(url, store, key, uint16(cfg.mtu)),
		ctx:          ctx,
		cancel:       cancel,
		disconnected: make(chan struct{}),
	}
	p.client.SetOnDisconnectListener(func(string) {
		p.disconnectedOnce.Do(func() {
			p.disconnectedAt = time.Now()
			close(p.disconnected)
		})
	})
	return p
}

// connect runs Client.Connect with an overall deadline (the client's own
// limits are 30 s dial + 8 s auth response).
func (p *peer) connect(timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- p.client.Connect(p.ctx) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: connect %s: %w", p.name, p.url, err)
		}
		return nil
	case <-time.After(timeout):
		p.cancel()
		return fmt.Errorf("%s: connect %s: no result within %s", p.name, p.url, timeout)
	}
}

func connectPeer(name, url, key string, store *auth.TokenStore) (*peer, error) {
	p := newPeer(name, url, key, store)
	if err := p.connect(15 * time.Second); err != nil {
		p.cancel()
		return nil, err
	}
	return p, nil
}

func (p *peer) isDisconnected() bool {
	select {
	case <-p.disconnected:
		return true
	default:
		return false
	}
}

// close sends the relay a close message and closes the socket (Client.Close).
func (p *peer) close() {
	_ = p.client.Close()
	p.cancel()
}

// open runs Client.OpenConn towards another peer's key.
func (p *peer) open(dstKey string, timeout time.Duration) (*pconn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := p.client.OpenConn(ctx, dstKey)
	if err != nil {
		return nil, err
	}
	return newPconn(c), nil
}

// pconn drains a relayed net.Conn in a goroutine: the client's Conn has no
// read deadlines and drops packets when its 100-slot queue is full, so a
// dedicated reader keeps up and gives the scenarios channels with timeouts.
type pconn struct {
	conn net.Conn
	in   chan []byte
	done chan struct{} // closed once Read fails (conn closed by us, by the client on "peers went offline", or relay lost)
	err  error
}

func newPconn(c net.Conn) *pconn {
	pc := &pconn{conn: c, in: make(chan []byte, 65536), done: make(chan struct{})}
	go func() {
		buf := make([]byte, 16384)
		for {
			n, err := c.Read(buf)
			if err != nil {
				pc.err = err
				close(pc.done)
				close(pc.in)
				return
			}
			pkt := make([]byte, n)
			copy(pkt, buf[:n])
			pc.in <- pkt
		}
	}()
	return pc
}

func (pc *pconn) closed() bool {
	select {
	case <-pc.done:
		return true
	default:
		return false
	}
}

// waitClosed waits for the client to close this conn (Read returns an error).
func (pc *pconn) waitClosed(timeout time.Duration) bool {
	select {
	case <-pc.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (pc *pconn) write(b []byte) error {
	_, err := pc.conn.Write(b)
	return err
}

var errTimeout = errors.New("timeout")

// recv returns the next packet or errTimeout / the read error.
func (pc *pconn) recv(timeout time.Duration) ([]byte, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case pkt, ok := <-pc.in:
		if !ok {
			return nil, fmt.Errorf("conn closed: %v", pc.err)
		}
		return pkt, nil
	case <-t.C:
		return nil, errTimeout
	}
}
