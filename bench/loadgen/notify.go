package main

// notify: target peers reconnect (a new session with the same peer ID while
// the old one is still open, alternating between target URLs) at a fixed
// total rate; subscriber peers on other URLs hold interest in them and time
// the "went offline" and "online" notices against the reconnect start.

import (
	"flag"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"
)

type notifyTarget struct {
	id      []byte
	mu      sync.Mutex
	round   int
	t0      int64
	authAt  int64
	offAt   int64
	onAt    int64
	onFirst bool
	sub     *Conn
}

type notifyStats struct {
	mu                             sync.Mutex
	off, on, hs, afterAuth, gap    []int64
	missingOff, missingOn, onFirst int
	rounds, dialFailures           int
	missOnTargets                  map[*notifyTarget]bool
	lateOver1s                     int
}

func (s *notifyStats) finish(t *notifyTarget) {
	// caller holds t.mu
	if t.round == 0 || t.authAt == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rounds++
	s.hs = append(s.hs, t.authAt-t.t0)
	if t.offAt == 0 {
		s.missingOff++
	} else {
		s.off = append(s.off, t.offAt-t.t0)
	}
	if t.onAt == 0 {
		s.missingOn++
		if s.missOnTargets == nil {
			s.missOnTargets = map[*notifyTarget]bool{}
		}
		s.missOnTargets[t] = true
	} else {
		s.on = append(s.on, t.onAt-t.t0)
		s.afterAuth = append(s.afterAuth, t.onAt-t.authAt)
		if t.offAt != 0 {
			s.gap = append(s.gap, t.onAt-t.offAt)
		}
	}
	if t.onFirst {
		s.onFirst++
	}
}

func runNotify(args []string) {
	fs := flag.NewFlagSet("notify", flag.ExitOnError)
	targetURLs := fs.String("target-urls", "", "URLs the targets (re)connect to, alternating")
	subURLs := fs.String("sub-urls", "", "URLs of the subscribers")
	targets := fs.Int("targets", 500, "target peers")
	subscribers := fs.Int("subscribers", 20, "subscriber peers (targets are spread over them)")
	rate := fs.Float64("rate", 500, "reconnects per second, in total")
	duration := fs.Duration("duration", 10*time.Second, "how long to reconnect")
	secret := fs.String("secret", "bench-secret", "relay auth secret")
	run := fs.String("run", time.Now().Format("150405.000000"), "run id")
	_ = fs.Parse(args)
	tus, sus := splitList(*targetURLs), splitList(*subURLs)
	token := Token(*secret, time.Hour)
	byKey := map[string]*notifyTarget{}
	ts := make([]*notifyTarget, *targets)
	var conns sync.Map
	var dialFailures atomic.Int64

	reader := func(c *Conn, handle func(m []byte)) {
		go func() {
			for {
				m, err := c.Read()
				if err != nil {
					return
				}
				if len(m) >= 2 && m[1] == msgHealthCheck {
					_ = c.Send(healthAnswer)
					continue
				}
				if handle != nil {
					handle(m)
				}
			}
		}()
	}

	for i := range ts {
		t := &notifyTarget{id: PeerID(run2(*run, "target", i))}
		ts[i] = t
		byKey[string(t.id)] = t
		c, _, err := Connect(tus[i%len(tus)], "", t.id, token, 4096, 4096, 10*time.Second)
		if err != nil {
			fatal("target %d: %v", i, err)
		}
		conns.Store(c, true)
		reader(c, nil)
	}
	stats := &notifyStats{}
	var initialOnline atomic.Int64
	subs := make([]*Conn, *subscribers)
	for s := range subs {
		c, _, err := Connect(sus[s%len(sus)], "", PeerID(run2(*run, "sub", s)), token, 64*1024, 4096, 10*time.Second)
		if err != nil {
			fatal("subscriber %d: %v", s, err)
		}
		subs[s] = c
		conns.Store(c, true)
		reader(c, func(m []byte) {
			if len(m) < 2 || (m[1] != msgOnline && m[1] != msgOffline) {
				return
			}
			at := now()
			var resub [][]byte
			for off := 2; off+peerIDSize <= len(m); off += peerIDSize {
				t := byKey[string(m[off:off+peerIDSize])]
				if t == nil {
					continue
				}
				t.mu.Lock()
				if m[1] == msgOffline {
					if t.round > 0 && t.offAt == 0 {
						t.offAt = at
					}
				} else if t.round == 0 {
					if t.onAt == 0 {
						t.onAt = at
						initialOnline.Add(1)
					}
				} else if t.onAt == 0 {
					t.onAt = at
					if t.offAt == 0 {
						t.onFirst = true
					}
					resub = append(resub, t.id)
				}
				t.mu.Unlock()
			}
			// Online interest is one-shot: register it again for the next round.
			for _, msg := range peerListMessages(msgSubscribe, resub) {
				_ = c.Send(msg)
			}
		})
	}
	for s, c := range subs {
		var ids [][]byte
		for i := s; i < len(ts); i += len(subs) {
			ids = append(ids, ts[i].id)
			ts[i].sub = c
		}
		for _, msg := range peerListMessages(msgSubscribe, ids) {
			_ = c.Send(msg)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for initialOnline.Load() < int64(len(ts)) {
		if time.Now().After(deadline) {
			fatal("only %d of %d targets reported online to subscribers", initialOnline.Load(), len(ts))
		}
		time.Sleep(10 * time.Millisecond)
	}
	logf("%d targets, %d subscribers ready", len(ts), len(subs))
	event("ready")

	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	var inflight sync.WaitGroup
	var k int
	for time.Since(start) < *duration {
		due := int(time.Since(start) / interval)
		for ; k <= due; k++ {
			t := ts[k%len(ts)]
			round := k/len(ts) + 1
			url := tus[(k%len(ts)+round)%len(tus)]
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				t.mu.Lock()
				stats.finish(t)
				t.round = round
				t.t0 = now()
				t.authAt, t.offAt, t.onAt, t.onFirst = 0, 0, 0, false
				t.mu.Unlock()
				c, _, err := Connect(url, "", t.id, token, 4096, 4096, 10*time.Second)
				if err != nil {
					dialFailures.Add(1)
					return
				}
				at := now()
				t.mu.Lock()
				t.authAt = at
				t.mu.Unlock()
				conns.Store(c, true)
				reader(c, nil)
			}()
		}
		time.Sleep(time.Millisecond + time.Duration(rand.Intn(100))*time.Microsecond)
	}
	elapsed := time.Since(start).Seconds()
	inflight.Wait()
	time.Sleep(time.Second)
	for _, t := range ts {
		t.mu.Lock()
		stats.finish(t)
		t.mu.Unlock()
	}
	conns.Range(func(k, _ any) bool { k.(*Conn).Close(); return true })
	emit(map[string]any{
		"mode": "notify", "targets": len(ts), "subscribers": len(subs), "rateTarget": *rate,
		"reconnectsPerSecond": float64(k) / elapsed, "rounds": stats.rounds,
		"dialFailures":   dialFailures.Load(),
		"missingOffline": stats.missingOff, "missingOnline": stats.missingOn, "onlineBeforeOffline": stats.onFirst,
		"targetsMissingOnline": len(stats.missOnTargets),
		"handshake":            percentiles(stats.hs),
		"offlineNotice":        percentiles(stats.off),
		"onlineNotice":         percentiles(stats.on),
		"onlineAfterAuth":      percentiles(stats.afterAuth),
		"offlineToOnlineGap":   percentiles(stats.gap),
	})
}
