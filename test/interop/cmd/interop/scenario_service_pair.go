package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	auth "github.com/netbirdio/netbird/shared/relay/auth/hmac"
	"github.com/netbirdio/netbird/shared/relay/messages"
)

// scenarioServicePair is for a relay behind one address whose backend the
// driver cannot choose (a Kubernetes Service: kube-proxy picks a pod per
// connection). A controller (the vitest wrapper) finds out where each client
// landed and steers the driver over stdin, one command per line; the driver
// answers each with one event line:
//
//	more      connect one more client (index N, to URL N, wrapping) and print
//	          {"event":"connected","index":N,"key":K,"peerId":"sha-…","instanceURL":U}
//	pair I J  OpenConn both ways between clients I and J, exchange all sizes,
//	          print {"event":"paired","i":I,"j":J,"pass":…,"reason":…, stats…}
//	done      (or end of input) close every client; the scenario's result follows
//
// It fails if a client cannot connect, reports another instance URL than
// -instance-url, a pair loses, reorders or corrupts a packet, or a client
// loses its relay connection.
func scenarioServicePair(r *result) {
	store, err := newTokenStore(cfg.secret, time.Hour)
	if err != nil {
		r.failf("token: %v", err)
		return
	}
	var peers []*peer
	defer func() {
		for _, p := range peers {
			if p != nil {
				p.close()
			}
		}
	}()
	pairs := 0
	emitLine(map[string]any{"event": "ready"})
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		switch {
		case len(fields) == 1 && fields[0] == "more":
			peers = append(peers, connectMore(r, len(peers), store))
		case len(fields) == 3 && fields[0] == "pair":
			var i, j int
			_, errI := fmt.Sscan(fields[1], &i)
			_, errJ := fmt.Sscan(fields[2], &j)
			if errI != nil || errJ != nil || !usable(peers, i) || !usable(peers, j) || i == j {
				reason := fmt.Sprintf("bad command %q (%d clients connected)", lines.Text(), len(peers))
				r.failf("%s", reason)
				emitLine(map[string]any{"event": "paired", "pass": false, "reason": reason})
				continue
			}
			pairExchange(r, peers[i], peers[j], i, j, uint32(10+4*pairs))
			pairs++
		case len(fields) == 1 && fields[0] == "done":
			r.set("clients", len(peers))
			r.set("pairs", pairs)
			checkConnected(r, peers)
			return
		default:
			reason := fmt.Sprintf("unknown command %q", lines.Text())
			r.failf("%s", reason)
			emitLine(map[string]any{"event": "error", "reason": reason})
		}
	}
	r.set("clients", len(peers))
	r.set("pairs", pairs)
	checkConnected(r, peers)
}

func usable(peers []*peer, i int) bool { return i >= 0 && i < len(peers) && peers[i] != nil }

// connectMore connects client n and reports where the relay says it is; nil
// (and r failed) if it could not connect.
func connectMore(r *result, n int, store *auth.TokenStore) *peer {
	key := newPeerKey()
	start := time.Now()
	p, err := connectPeer(fmt.Sprintf("c%d", n), relayURL(n), key, store)
	if err != nil {
		r.failf("%v", err)
		emitLine(map[string]any{"event": "connected", "index": n, "error": err.Error()})
		return nil
	}
	connectMs := time.Since(start).Milliseconds()
	instance, err := p.client.ServerInstanceURL()
	if err != nil {
		r.failf("c%d: ServerInstanceURL: %v", n, err)
	} else if instance != cfg.instanceURL {
		r.failf("c%d reported instance URL %q, expected %q", n, instance, cfg.instanceURL)
	}
	emitLine(map[string]any{
		"event":       "connected",
		"index":       n,
		"key":         key,
		"peerId":      messages.HashID(key).String(),
		"instanceURL": instance,
		"connectMs":   connectMs,
	})
	return p
}

// pairExchange opens conns both ways between a and b and runs the exchange
// scenario's all-sizes exchange on them; its stats go into the event.
func pairExchange(r *result, a, b *peer, i, j int, firstStream uint32) {
	pr := newResult("pair")
	event := map[string]any{"event": "paired", "i": i, "j": j}
	aB, bA, err := openBoth(a, b)
	if err != nil {
		pr.failf("%v", err)
	} else {
		defer aB.conn.Close()
		defer bA.conn.Close()
		if exchangeAllSizes(pr, "", aB, bA, firstStream) && (a.isDisconnected() || b.isDisconnected()) {
			pr.failf("a client lost its relay connection during the exchange")
		}
	}
	pr.mu.Lock()
	for k, v := range pr.metrics {
		event[k] = v
	}
	event["pass"], event["reason"] = pr.pass, pr.reason
	pr.mu.Unlock()
	if !pr.pass {
		r.failf("pair c%d<->c%d: %s", i, j, pr.reason)
	}
	emitLine(event)
}

func checkConnected(r *result, peers []*peer) {
	for i, p := range peers {
		if p != nil && p.isDisconnected() {
			r.failf("client c%d lost its relay connection", i)
			return
		}
	}
}
