package main

// The NetBird relay protocol, client side: peer IDs, HMAC tokens, auth,
// transport, health-check answers and peer-state messages.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
)

const (
	msgTransport   = 3
	msgClose       = 4
	msgHealthCheck = 5
	msgAuth        = 6
	msgAuthResp    = 7
	msgSubscribe   = 8
	msgUnsubscribe = 9
	msgOnline      = 10
	msgOffline     = 11
	peerIDSize     = 36
	headerSize     = 2
	transportHdr   = headerSize + peerIDSize
	maxIDsPerMsg   = (8820 - 2) / 36
)

var authMagic = []byte{0x21, 0x12, 0xA4, 0x42}
var healthAnswer = []byte{1, msgHealthCheck}

// PeerID is what NetBird derives from a peer's identifier: "sha-" + SHA-256.
func PeerID(name string) []byte {
	h := sha256.Sum256([]byte(name))
	return append([]byte("sha-"), h[:]...)
}

// Token issues an HMAC v2 token: [1][HMAC-SHA256(SHA-256(secret), expiry)][expiry].
func Token(secret string, ttl time.Duration) []byte {
	key := sha256.Sum256([]byte(secret))
	payload := []byte(strconv.FormatInt(time.Now().Add(ttl).Unix(), 10))
	mac := hmac.New(sha256.New, key[:])
	mac.Write(payload)
	out := []byte{1}
	out = append(out, mac.Sum(nil)...)
	return append(out, payload...)
}

func authMessage(id, token []byte) []byte {
	m := []byte{1, msgAuth}
	m = append(m, authMagic...)
	m = append(m, id...)
	return append(m, token...)
}

// Connect dials a relay, authenticates as id and returns the instance URL.
func Connect(url, local string, id, token []byte, rbuf, wbuf int, timeout time.Duration) (*Conn, string, error) {
	c, err := DialWS(url, local, rbuf, wbuf, timeout)
	if err != nil {
		return nil, "", err
	}
	if err := c.Send(authMessage(id, token)); err != nil {
		c.Close()
		return nil, "", err
	}
	_ = c.c.SetReadDeadline(time.Now().Add(timeout))
	p, err := c.Read()
	if err != nil {
		c.Close()
		return nil, "", fmt.Errorf("auth: %w", err)
	}
	if len(p) < 3 || p[0] != 1 || p[1] != msgAuthResp {
		c.Close()
		return nil, "", errors.New("auth: first message is not an auth response")
	}
	_ = c.c.SetReadDeadline(time.Time{})
	return c, string(p[2:]), nil
}

func transportMessage(dst []byte, payloadSize int) []byte {
	m := make([]byte, transportHdr+payloadSize)
	m[0], m[1] = 1, msgTransport
	copy(m[2:], dst)
	return m
}

// peerListMessages splits a peer-ID list into messages of at most 244 IDs.
func peerListMessages(typ byte, ids [][]byte) [][]byte {
	var out [][]byte
	for len(ids) > 0 {
		n := len(ids)
		if n > maxIDsPerMsg {
			n = maxIDsPerMsg
		}
		m := []byte{1, typ}
		for _, id := range ids[:n] {
			m = append(m, id...)
		}
		out = append(out, m)
		ids = ids[n:]
	}
	return out
}

func putStamp(m []byte, seq uint64, ts int64) {
	binary.LittleEndian.PutUint64(m[transportHdr:], seq)
	binary.LittleEndian.PutUint64(m[transportHdr+8:], uint64(ts))
}

func readStamp(m []byte) (uint64, int64) {
	return binary.LittleEndian.Uint64(m[transportHdr:]), int64(binary.LittleEndian.Uint64(m[transportHdr+8:]))
}
