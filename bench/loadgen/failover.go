package main

// failover: peers on a victim relay, observers on other relays subscribed to
// all of them. The caller kills the victim (kill -9); the first broken victim
// connection marks the moment, and each observer times the "went offline"
// notices until it has one for every victim peer.

import (
	"flag"
	"sync"
	"sync/atomic"
	"time"
)

func runFailover(args []string) {
	fs := flag.NewFlagSet("failover", flag.ExitOnError)
	victimURL := fs.String("victim-url", "", "relay that will be killed")
	observerURLs := fs.String("observer-urls", "", "relays that must announce the victim's peers offline")
	peers := fs.Int("peers", 300, "peers on the victim")
	timeout := fs.Duration("timeout", 20*time.Second, "give up waiting for notices after this")
	secret := fs.String("secret", "bench-secret", "relay auth secret")
	run := fs.String("run", time.Now().Format("150405.000000"), "run id")
	_ = fs.Parse(args)
	token := Token(*secret, time.Hour)
	obs := splitList(*observerURLs)

	var killedAt atomic.Int64
	ids := make([][]byte, *peers)
	index := map[string]int{}
	victims := make([]*Conn, *peers)
	for i := range ids {
		ids[i] = PeerID(run2(*run, "victim", i))
		index[string(ids[i])] = i
		c, _, err := Connect(*victimURL, "", ids[i], token, 4096, 4096, 10*time.Second)
		if err != nil {
			fatal("victim peer %d: %v", i, err)
		}
		victims[i] = c
	}
	type observer struct {
		c        *Conn
		mu       sync.Mutex
		online   map[int]bool
		offAt    []int64
		offCount int
	}
	os_ := make([]*observer, len(obs))
	for o, url := range obs {
		c, _, err := Connect(url, "", PeerID(run2(*run, "observer", o)), token, 64*1024, 4096, 10*time.Second)
		if err != nil {
			fatal("observer %d: %v", o, err)
		}
		ob := &observer{c: c, online: map[int]bool{}, offAt: make([]int64, *peers)}
		os_[o] = ob
		go func() {
			for {
				m, err := c.Read()
				if err != nil {
					return
				}
				if len(m) < 2 {
					continue
				}
				switch m[1] {
				case msgHealthCheck:
					_ = c.Send(healthAnswer)
				case msgOnline, msgOffline:
					at := now()
					ob.mu.Lock()
					for off := 2; off+peerIDSize <= len(m); off += peerIDSize {
						i, ok := index[string(m[off:off+peerIDSize])]
						if !ok {
							continue
						}
						if m[1] == msgOnline {
							ob.online[i] = true
						} else if ob.offAt[i] == 0 {
							ob.offAt[i] = at
							ob.offCount++
						}
					}
					ob.mu.Unlock()
				}
			}
		}()
		for _, msg := range peerListMessages(msgSubscribe, ids) {
			_ = c.Send(msg)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ready := true
		for _, ob := range os_ {
			ob.mu.Lock()
			if len(ob.online) < *peers {
				ready = false
			}
			ob.mu.Unlock()
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			fatal("observers did not see every victim peer online")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range victims {
		c := c
		go func() {
			for {
				m, err := c.Read()
				if err != nil {
					killedAt.CompareAndSwap(0, now())
					return
				}
				if len(m) >= 2 && m[1] == msgHealthCheck {
					_ = c.Send(healthAnswer)
				}
			}
		}()
	}
	event("ready", "peers", *peers, "observers", len(obs))
	for killedAt.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	t0 := killedAt.Load()
	event("victim-gone")
	end := time.Now().Add(*timeout)
	for time.Now().Before(end) {
		all := true
		for _, ob := range os_ {
			ob.mu.Lock()
			if ob.offCount < *peers {
				all = false
			}
			ob.mu.Unlock()
		}
		if all {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	var results []map[string]any
	worst := int64(0)
	missing := 0
	for o, ob := range os_ {
		ob.mu.Lock()
		var lat []int64
		last := int64(0)
		for _, at := range ob.offAt {
			if at == 0 {
				continue
			}
			lat = append(lat, at-t0)
			if at-t0 > last {
				last = at - t0
			}
		}
		miss := *peers - ob.offCount
		ob.mu.Unlock()
		missing += miss
		if last > worst {
			worst = last
		}
		results = append(results, map[string]any{"observer": obs[o], "missing": miss, "allOfflineMs": float64(last) / 1e6, "notices": percentiles(lat)})
		ob.c.Close()
	}
	emit(map[string]any{
		"mode": "failover", "peers": *peers, "observers": results, "missing": missing,
		"detectedEverywhereMs": float64(worst) / 1e6,
	})
}
