package main

import (
	"fmt"
	"time"

	auth "github.com/netbirdio/netbird/shared/relay/auth/hmac"
)

// scenarioGracefulShutdown needs a controller (the vitest wrapper): it prints
// {"event":"shutdown","url":U,"index":0} and the controller sends SIGTERM to
// the relay serving U (and restarts it once it has exited). The clients on
// that relay must receive its close message (type 4) and a disconnect, then
// reconnect — to another URL in the multi-URL case, to the restarted relay in
// the single-URL case — and exchange data again.
func scenarioGracefulShutdown(r *result) {
	multi := len(cfg.urls) > 1
	alice, bob, aB, bA, ok := connectPair(r, relayURL(0), relayURL(1))
	if !ok {
		return
	}
	defer func() { alice.close(); bob.close() }()
	if err := pingPong(aB, bA, 200, 500); err != nil {
		r.failf("before shutdown: %v", err)
		return
	}
	before := closeByServer.Load()
	t0 := time.Now()
	emitLine(map[string]any{"event": "shutdown", "url": relayURL(0), "index": 0})

	select {
	case <-alice.disconnected:
		r.set("aliceDisconnectMs", alice.disconnectedAt.Sub(t0).Milliseconds())
	case <-time.After(cfg.shutdownTimeout):
		r.failf("alice was not disconnected within %s of the shutdown", cfg.shutdownTimeout)
		return
	}
	wantClose := int64(1)
	if multi {
		// bob's pod stays up: he keeps his relay connection and is told that
		// alice went offline (her session ended with her pod's drain).
		if bA.waitClosed(cfg.offlineTimeout) && !bob.isDisconnected() {
			r.set("bobOfflineNoticeMs", time.Since(t0).Milliseconds())
		} else if bob.isDisconnected() {
			r.failf("bob (on another pod) lost his relay connection")
			return
		} else {
			r.failf("bob got no 'peers went offline' for alice within %s of her disconnect", cfg.offlineTimeout)
			return
		}
	} else {
		wantClose = 2
		select {
		case <-bob.disconnected:
			r.set("bobDisconnectMs", bob.disconnectedAt.Sub(t0).Milliseconds())
		case <-time.After(cfg.shutdownTimeout):
			r.failf("bob was not disconnected within %s of the shutdown", cfg.shutdownTimeout)
			return
		}
	}
	// Let the read loops log the close message before counting.
	time.Sleep(100 * time.Millisecond)
	closes := closeByServer.Load() - before
	r.set("closeMessages", closes)
	if closes < wantClose {
		r.failf("%d client(s) disconnected but only %d received the relay's close message (socket dropped without close)", wantClose, closes)
		return
	}

	store, err := newTokenStore(cfg.secret, time.Hour)
	if err != nil {
		r.failf("token: %v", err)
		return
	}
	t1 := time.Now()
	var alice2, bob2 *peer
	if multi {
		// Another pod than the one that shut down (and than bob's, if any).
		target := relayURL(1)
		if len(cfg.urls) > 2 {
			target = relayURL(2)
		}
		alice2, err = connectPeer("alice", target, alice.key, store)
		bob2 = bob
		if err != nil {
			r.failf("alice reconnect to %s: %v", target, err)
			return
		}
	} else {
		// The controller restarts the relay; reconnect like NetBird's client
		// would (it retries), with a deadline.
		alice2, err = connectRetry("alice", relayURL(0), alice.key, store, 30*time.Second)
		if err == nil {
			bob2, err = connectRetry("bob", relayURL(0), bob.key, store, 30*time.Second)
		}
		if err != nil {
			r.failf("reconnect after restart: %v", err)
			if alice2 != nil {
				alice2.close()
			}
			return
		}
		defer bob2.close()
	}
	defer alice2.close()
	r.set("reconnectMs", time.Since(t1).Milliseconds())
	aB2, bA2, err := openBoth(alice2, bob2)
	if err != nil {
		r.failf("after reconnect: %v", err)
		return
	}
	ab, ba := exchange(aB2, bA2, 201, 202, 500, mtuSizes(cfg.mtu), 2000)
	setStats(r, "after", ab, ba)
}

func connectRetry(name, url, key string, store *auth.TokenStore, deadline time.Duration) (*peer, error) {
	end := time.Now().Add(deadline)
	var last error
	for time.Now().Before(end) {
		p, err := connectPeer(name, url, key, store)
		if err == nil {
			return p, nil
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	return nil, fmt.Errorf("no connection within %s: %v", deadline, last)
}
