package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	auth "github.com/netbirdio/netbird/shared/relay/auth/hmac"
	relayclient "github.com/netbirdio/netbird/shared/relay/client"
)

// aliceURL: bob sits on URL 0; alice alternates over the other URLs (the
// other pods), or uses the single URL of a standalone relay.
func aliceURL(i int) string {
	n := len(cfg.urls)
	if n == 1 {
		return cfg.urls[0]
	}
	return cfg.urls[1+i%(n-1)]
}

// reconnectStats counts failed iterations by kind.
type reconnectStats struct {
	r            *result
	iterations   int
	failures     int
	kinds        map[string]int
	firstErr     string
	iterFailed   bool
	offlineMsSum int64
	offlineMsMax int64
	offlineN     int64
}

func newReconnectStats(r *result) *reconnectStats {
	return &reconnectStats{r: r, kinds: map[string]int{}}
}

func (s *reconnectStats) begin() { s.iterations++; s.iterFailed = false }

func (s *reconnectStats) fail(i int, kind string, format string, args ...any) {
	s.kinds[kind]++
	if !s.iterFailed {
		s.failures++
		s.iterFailed = true
	}
	if s.firstErr == "" {
		s.firstErr = fmt.Sprintf("iteration %d: %s: %s", i, kind, fmt.Sprintf(format, args...))
	}
}

func (s *reconnectStats) offline(d time.Duration) {
	ms := d.Milliseconds()
	s.offlineMsSum += ms
	s.offlineN++
	if ms > s.offlineMsMax {
		s.offlineMsMax = ms
	}
}

func (s *reconnectStats) stop() bool {
	return cfg.raceMaxFailures > 0 && s.failures >= cfg.raceMaxFailures
}

func (s *reconnectStats) report(wanted int) {
	r := s.r
	r.set("iterations", s.iterations)
	r.set("failures", s.failures)
	for k, v := range s.kinds {
		r.set(k, v)
	}
	if s.offlineN > 0 {
		r.set("offlineMsAvg", s.offlineMsSum/s.offlineN)
		r.set("offlineMsMax", s.offlineMsMax)
	}
	if s.firstErr != "" {
		r.set("firstError", s.firstErr)
	}
	if s.failures > 0 {
		r.failf("%d of %d iterations failed; first: %s", s.failures, s.iterations, s.firstErr)
	} else if s.iterations < wanted {
		r.failf("only %d of %d iterations ran", s.iterations, wanted)
	}
}

// reopen makes bob's and alice's conns to each other again after alice
// came back, and checks data flows both ways. It is the part of the race and
// the socket-death iterations that must always work.
func reopen(s *reconnectStats, i int, bob, alice *peer, stale *pconn) (bA, aB *pconn) {
	var err error
	bA, err = bob.open(alice.key, openTimeout)
	if errors.Is(err, relayclient.ErrConnAlreadyExists) {
		s.fail(i, "connAlreadyExists", "bob OpenConn(alice): %v", err)
		// Free the stale conn by hand so the loop can go on, and retry.
		if stale != nil {
			_ = stale.conn.Close()
		}
		bA, err = bob.open(alice.key, openTimeout)
	}
	if err != nil {
		s.fail(i, "openFailures", "bob OpenConn(alice): %v", err)
		return nil, nil
	}
	aB, err = alice.open(bob.key, openTimeout)
	if err != nil {
		s.fail(i, "openFailures", "alice OpenConn(bob): %v", err)
		_ = bA.conn.Close()
		return nil, nil
	}
	if err := pingPong(aB, bA, uint32(1000+2*i), 1+(i*37)%cfg.mtu); err != nil {
		s.fail(i, "dataFailures", "%v", err)
	}
	return bA, aB
}

// waitOffline waits for bob's conn to alice to be closed by the client, which
// it does on "peers went offline" for alice.
func waitOffline(s *reconnectStats, i int, bob *peer, bA *pconn, since time.Time, what string) {
	if bA == nil {
		return
	}
	if bA.waitClosed(cfg.offlineTimeout) {
		if bob.isDisconnected() {
			s.fail(i, "bobDisconnected", "bob lost its relay connection")
			return
		}
		s.offline(time.Since(since))
		return
	}
	// Leave bob's stale conn in place: his next OpenConn shows what a real
	// client then hits ("connection already exists").
	s.fail(i, "missedOffline", "bob got no 'peers went offline' for alice within %s after %s", cfg.offlineTimeout, what)
}

// connectBob sets up what both reconnect scenarios share: a token store and
// bob, the peer that holds a conn to alice on the first relay.
func connectBob(r *result) (*auth.TokenStore, *peer, bool) {
	store, err := newTokenStore(cfg.secret, time.Hour)
	if err != nil {
		r.failf("token: %v", err)
		return nil, nil, false
	}
	bob, err := connectPeer("bob", relayURL(0), newPeerKey(), store)
	if err != nil {
		r.failf("%v", err)
		return nil, nil, false
	}
	return store, bob, true
}

func scenarioReconnectRace(r *result) {
	store, bob, ok := connectBob(r)
	if !ok {
		return
	}
	defer bob.close()
	aliceKey := newPeerKey()
	alice, err := connectPeer("alice", aliceURL(0), aliceKey, store)
	if err != nil {
		r.failf("%v", err)
		return
	}
	defer func() { alice.close() }()
	aB, bA, err := openBoth(alice, bob)
	if err != nil {
		r.failf("%v", err)
		return
	}
	if err := pingPong(aB, bA, 1, 100); err != nil {
		r.failf("initial exchange: %v", err)
		return
	}

	// Three orders of "old alice leaves / new alice arrives", in turn:
	// 0 close then connect at once, 1 both at the same time, 2 connect the
	// new one first (the old session is still registered), then close.
	modes := []string{"closeThenConnect", "concurrent", "connectThenClose"}
	modeFailures := map[string]int{}
	s := newReconnectStats(r)
	for i := 1; i <= cfg.raceCount && !s.stop(); i++ {
		s.begin()
		if bob.isDisconnected() {
			s.fail(i, "bobDisconnected", "bob lost its relay connection")
			break
		}
		if bA != nil && bA.closed() {
			s.fail(i, "spuriousOffline", "bob's conn to the current alice was closed while she stayed (%v)", bA.err)
		}
		mode := i % 3
		old := alice
		alice = newPeer("alice", aliceURL(i), aliceKey, store)
		t0 := time.Now()
		switch mode {
		case 0:
			old.close()
			err = alice.connect(15 * time.Second)
		case 1:
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); old.close() }()
			err = alice.connect(15 * time.Second)
			wg.Wait()
		case 2:
			err = alice.connect(15 * time.Second)
			old.close()
		}
		if err != nil {
			s.fail(i, "connectFailures", "%v", err)
			time.Sleep(200 * time.Millisecond)
			alice = newPeer("alice", aliceURL(i), aliceKey, store)
			if err := alice.connect(15 * time.Second); err != nil {
				s.fail(i, "connectFailures", "retry: %v", err)
				break
			}
		}
		waitOffline(s, i, bob, bA, t0, "alice reconnected ("+modes[mode]+")")
		stale := bA
		bA, aB = reopen(s, i, bob, alice, stale)
		if s.iterFailed {
			modeFailures[modes[mode]]++
		}
	}
	for k, v := range modeFailures {
		r.set("failures_"+k, v)
	}
	_ = aB
	s.report(cfg.raceCount)
}

// childConfig: socket-death runs alice in a child process of this binary so
// that she can be killed with SIGKILL (no close message, no clean shutdown).
type childConfig struct {
	role, url, key, peer string
}

// runChild connects as alice, opens a conn to the parent's bob, prints
// "ready" and echoes every packet back until killed (or stdin closes).
func runChild(c childConfig) int {
	store, err := newTokenStore(cfg.secret, time.Hour)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	p, err := connectPeer("child-alice", c.url, c.key, store)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	conn, err := p.open(c.peer, openTimeout)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	for {
		pkt, err := conn.recv(time.Hour)
		if err != nil {
			return 0
		}
		if err := conn.write(pkt); err != nil {
			return 0
		}
	}
}

func startChild(url, key, peerKey string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-child", "alice", "-child-url", url, "-child-key", key, "-child-peer", peerKey,
		"-secret", cfg.secret, "-log-level", cfg.logLevel)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	_ = stdin // closed when the parent exits: the child then exits too
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		} else {
			line <- "child exited"
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		if strings.TrimSpace(l) == "ready" {
			return cmd, nil
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("child: %s", l)
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("child: not ready within 20s")
	}
}

func scenarioSocketDeath(r *result) {
	store, bob, ok := connectBob(r)
	if !ok {
		return
	}
	defer bob.close()
	s := newReconnectStats(r)
	for i := 0; i < cfg.deathCount && !s.stop(); i++ {
		s.begin()
		if bob.isDisconnected() {
			s.fail(i, "bobDisconnected", "bob lost its relay connection")
			break
		}
		key := newPeerKey()
		child, err := startChild(aliceURL(i), key, bob.key)
		if err != nil {
			s.fail(i, "childFailures", "%v", err)
			continue
		}
		bA, err := bob.open(key, openTimeout)
		if err != nil {
			s.fail(i, "openFailures", "bob OpenConn(child alice): %v", err)
			_ = child.Process.Kill()
			_ = child.Wait()
			continue
		}
		ping := makePacket(uint32(5000+i), 0, 200)
		if err := bA.write(ping); err != nil {
			s.fail(i, "dataFailures", "bob -> child alice: %v", err)
		} else if echo, err := bA.recv(5 * time.Second); err != nil || string(echo) != string(ping) {
			s.fail(i, "dataFailures", "no echo from child alice: %v", err)
		}

		// SIGKILL: the socket dies without a close message; a new alice with
		// the same key connects at once (to another pod in the multi-URL case).
		t0 := time.Now()
		_ = child.Process.Kill()
		alice, err := connectPeer("alice", aliceURL(i+1), key, store)
		_ = child.Wait()
		if err != nil {
			s.fail(i, "connectFailures", "%v", err)
			_ = bA.conn.Close()
			continue
		}
		waitOffline(s, i, bob, bA, t0, "alice's process was killed and she reconnected")
		bA2, _ := reopen(s, i, bob, alice, bA)

		// A clean leave must be announced too.
		alice.close()
		if bA2 != nil && !bA2.waitClosed(cfg.offlineTimeout) {
			s.fail(i, "missedOfflineAfterClose", "bob got no 'peers went offline' within %s after alice closed", cfg.offlineTimeout)
			_ = bA2.conn.Close()
		}
	}
	s.report(cfg.deathCount)
}
