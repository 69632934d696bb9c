package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/netbirdio/netbird/shared/relay/messages"
)

const openTimeout = 10 * time.Second

// connectPair connects alice and bob, each on its own URL (different pods in
// the multi-URL case), and opens relayed conns both ways.
func connectPair(r *result, aliceURL, bobURL string) (alice, bob *peer, aB, bA *pconn, ok bool) {
	store, err := newTokenStore(cfg.secret, time.Hour)
	if err != nil {
		r.failf("token: %v", err)
		return
	}
	alice, err = connectPeer("alice", aliceURL, newPeerKey(), store)
	if err != nil {
		r.failf("%v", err)
		return
	}
	bob, err = connectPeer("bob", bobURL, newPeerKey(), store)
	if err != nil {
		alice.close()
		r.failf("%v", err)
		return
	}
	aB, bA, err = openBoth(alice, bob)
	if err != nil {
		alice.close()
		bob.close()
		r.failf("%v", err)
		return
	}
	return alice, bob, aB, bA, true
}

// openBoth runs OpenConn on both sides concurrently.
func openBoth(a, b *peer) (ab, ba *pconn, err error) {
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ab, errA = a.open(b.key, openTimeout) }()
	go func() { defer wg.Done(); ba, errB = b.open(a.key, openTimeout) }()
	wg.Wait()
	if errA != nil {
		return nil, nil, fmt.Errorf("%s OpenConn(%s): %w", a.name, b.name, errA)
	}
	if errB != nil {
		return nil, nil, fmt.Errorf("%s OpenConn(%s): %w", b.name, a.name, errB)
	}
	return ab, ba, nil
}

func scenarioConnect(r *result) {
	store, err := newTokenStore(cfg.secret, time.Hour)
	if err != nil {
		r.failf("token: %v", err)
		return
	}
	var maxMs int64
	for i := range cfg.urls {
		start := time.Now()
		p, err := connectPeer(fmt.Sprintf("peer-%d", i), relayURL(i), newPeerKey(), store)
		if err != nil {
			r.failf("%v", err)
			return
		}
		ms := time.Since(start).Milliseconds()
		if ms > maxMs {
			maxMs = ms
		}
		got, err := p.client.ServerInstanceURL()
		r.set("transport", p.client.Transport())
		p.close()
		if err != nil {
			r.failf("%s: ServerInstanceURL: %v", relayURL(i), err)
			return
		}
		r.set("instanceURL", got)
		if got != cfg.instanceURL {
			r.failf("%s reported instance URL %q, expected %q", relayURL(i), got, cfg.instanceURL)
			return
		}
	}
	r.set("connectMsMax", maxMs)
}

func setStats(r *result, prefix string, ab, ba *streamStats) bool {
	r.set(prefix+"SentAB", ab.Sent)
	r.set(prefix+"ReceivedAB", ab.Received)
	r.set(prefix+"SentBA", ba.Sent)
	r.set(prefix+"ReceivedBA", ba.Received)
	r.set(prefix+"Lost", ab.Lost+ba.Lost)
	r.set(prefix+"Corrupt", ab.Corrupt+ba.Corrupt)
	r.set(prefix+"Reordered", ab.Reordered+ba.Reordered)
	if !ab.ok() {
		r.failf("%s alice->bob: sent %d received %d: %s", prefix, ab.Sent, ab.Received, orStr(ab.FirstErr, "incomplete"))
		return false
	}
	if !ba.ok() {
		r.failf("%s bob->alice: sent %d received %d: %s", prefix, ba.Sent, ba.Received, orStr(ba.FirstErr, "incomplete"))
		return false
	}
	return true
}

// maxPayload is the largest transport payload a NetBird client can receive:
// its read buffer is messages.MaxMessageSize (8820) bytes, minus the
// 2-byte header and the 36-byte peer ID. The client does not enforce a limit
// when sending.
const maxPayload = messages.MaxMessageSize - 2 - 36

func scenarioExchange(r *result) {
	alice, bob, aB, bA, ok := connectPair(r, relayURL(0), relayURL(1))
	if !ok {
		return
	}
	defer alice.close()
	defer bob.close()

	if !exchangeAllSizes(r, "", aB, bA, 1) {
		return
	}
	if alice.isDisconnected() || bob.isDisconnected() {
		r.failf("a client lost its relay connection during the exchange")
	}
}

// exchangeAllSizes sends cfg.exchangeCount packets each way with sizes 1..MTU,
// then 200 each way from MTU+1 up to the largest payload a client can read
// (8192 is NetBird's maximum interface MTU), on streams firstStream..+3.
// Stats go to r under prefix+"mtu…" and prefix+"big…"; false (and r failed)
// at the first phase that lost, reordered or corrupted a packet.
func exchangeAllSizes(r *result, prefix string, aB, bA *pconn, firstStream uint32) bool {
	start := time.Now()
	ab, ba := exchange(aB, bA, firstStream, firstStream+1, cfg.exchangeCount, mtuSizes(cfg.mtu), cfg.rate)
	r.set(prefix+"mtuPhaseMs", time.Since(start).Milliseconds())
	r.set(prefix+"maxSize", cfg.mtu)
	if !setStats(r, prefix+"mtu", ab, ba) {
		return false
	}
	big := fixedSizes(cfg.mtu+1, 4000, 8192, maxPayload-1, maxPayload)
	ab, ba = exchange(aB, bA, firstStream+2, firstStream+3, 200, big, 1000)
	r.set(prefix+"bigMaxSize", maxPayload)
	return setStats(r, prefix+"big", ab, ba)
}

func scenarioManyClients(r *result) {
	n := cfg.clients
	// Client i sits on URL i mod len(urls); pairs are (i, i+1) and (i, i+2).
	// With a client count that is a multiple of the URL count (50 -> 51 for
	// 3 pods) no pair shares a pod, wrap-around included.
	if k := len(cfg.urls); k > 1 && n%k != 0 {
		n += k - n%k
	}
	perPair := cfg.pairCount
	pairRate := cfg.pairRate
	store, err := newTokenStore(cfg.secret, time.Hour)
	if err != nil {
		r.failf("token: %v", err)
		return
	}
	peers := make([]*peer, n)
	defer func() {
		for _, p := range peers {
			if p != nil {
				p.close()
			}
		}
	}()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := connectPeer(fmt.Sprintf("c%d", i), relayURL(i), newPeerKey(), store)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			peers[i] = p
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		r.failf("%v", firstErr)
		return
	}

	type pair struct{ a, b int }
	var pairs []pair
	crossPod := 0
	for i := 0; i < n; i++ {
		for _, d := range []int{1, 2} {
			p := pair{i, (i + d) % n}
			pairs = append(pairs, p)
			if len(cfg.urls) > 1 && p.a%len(cfg.urls) != p.b%len(cfg.urls) {
				crossPod++
			}
		}
	}
	r.set("clients", n)
	r.set("pairs", len(pairs))
	r.set("conversationsPerClient", 4)
	r.set("packetsPerPairEachWay", perPair)
	r.set("pairRate", pairRate)
	r.set("crossPodPairs", crossPod)

	conns := make([][2]*pconn, len(pairs))
	start := time.Now()
	for i, p := range pairs {
		wg.Add(1)
		go func(i int, p pair) {
			defer wg.Done()
			ab, ba, err := openBoth(peers[p.a], peers[p.b])
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			conns[i] = [2]*pconn{ab, ba}
		}(i, p)
	}
	wg.Wait()
	r.set("openAllMs", time.Since(start).Milliseconds())
	if firstErr != nil {
		r.failf("%v", firstErr)
		return
	}

	var sent, delivered, lost, corrupt, badPairs int
	var firstBad string
	start = time.Now()
	for i := range pairs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ab, ba := exchange(conns[i][0], conns[i][1], uint32(2*i+10), uint32(2*i+11), perPair, mtuSizes(cfg.mtu), pairRate)
			mu.Lock()
			defer mu.Unlock()
			sent += ab.Sent + ba.Sent
			delivered += ab.Received + ba.Received
			lost += ab.Lost + ba.Lost
			corrupt += ab.Corrupt + ba.Corrupt
			if !ab.ok() || !ba.ok() {
				if os.Getenv("INTEROP_DEBUG") != "" {
					fmt.Fprintf(os.Stderr, "pair %d c%d<->c%d: ab=%+v ba=%+v\n", i, pairs[i].a, pairs[i].b, *ab, *ba)
				}
				badPairs++
				if firstBad == "" {
					p := pairs[i]
					firstBad = fmt.Sprintf("pair c%d<->c%d: %s", p.a, p.b, orStr(ab.FirstErr+ba.FirstErr, "incomplete"))
				}
			}
		}(i)
	}
	wg.Wait()
	r.set("exchangeMs", time.Since(start).Milliseconds())
	r.set("packetsSent", sent)
	r.set("packetsDelivered", delivered)
	r.set("lost", lost)
	r.set("corrupt", corrupt)
	r.set("failedPairs", badPairs)
	if badPairs > 0 {
		r.failf("%d of %d pairs failed; first: %s", badPairs, len(pairs), firstBad)
		return
	}
	for i, p := range peers {
		if p.isDisconnected() {
			r.failf("client c%d lost its relay connection", i)
			return
		}
	}
}

func scenarioBadTokens(r *result) {
	type attempt struct {
		name   string
		secret string
		ttl    time.Duration
		accept bool
	}
	attempts := []attempt{
		{"expired", cfg.secret, -2 * time.Minute, false},
		{"forged", "wrong-" + cfg.secret, time.Hour, false},
		{"valid", cfg.secret, time.Hour, true},
	}
	for i, a := range attempts {
		store, err := newTokenStore(a.secret, a.ttl)
		if err != nil {
			r.failf("token: %v", err)
			return
		}
		start := time.Now()
		p := newPeer(a.name, relayURL(i), newPeerKey(), store)
		err = p.connect(20 * time.Second)
		ms := time.Since(start).Milliseconds()
		r.set(a.name+"Ms", ms)
		if err == nil {
			p.close()
		} else {
			p.cancel()
			r.set(a.name+"Error", err.Error())
		}
		switch {
		case a.accept && err != nil:
			r.failf("a valid token was refused: %v", err)
			return
		case !a.accept && err == nil:
			r.failf("%s token was accepted", a.name)
			return
		case !a.accept && ms > 10_000:
			r.failf("%s token: refusal took %d ms (handshake limit is 10 s)", a.name, ms)
			return
		}
	}
}

func scenarioIdle(r *result) {
	alice, bob, aB, bA, ok := connectPair(r, relayURL(0), relayURL(1))
	if !ok {
		return
	}
	defer alice.close()
	defer bob.close()
	if err := pingPong(aB, bA, 100, 100); err != nil {
		r.failf("before idle: %v", err)
		return
	}
	select {
	case <-alice.disconnected:
		r.failf("alice lost its relay connection after %s idle", time.Since(r.start).Round(time.Second))
		return
	case <-bob.disconnected:
		r.failf("bob lost its relay connection after %s idle", time.Since(r.start).Round(time.Second))
		return
	case <-aB.done:
		r.failf("alice's conn to bob closed while idle: %v", aB.err)
		return
	case <-bA.done:
		r.failf("bob's conn to alice closed while idle: %v", bA.err)
		return
	case <-time.After(cfg.idle):
	}
	r.set("idleSeconds", int(cfg.idle.Seconds()))
	ab, ba := exchange(aB, bA, 101, 102, 200, mtuSizes(cfg.mtu), 1000)
	setStats(r, "after", ab, ba)
}
