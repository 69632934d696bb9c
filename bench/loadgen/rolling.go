package main

// rolling: peers spread over several relays behave like NetBird clients
// (reconnect after a close or a broken connection: about 1.5 s, then
// exponential backoff with jitter) through a simulated load balancer whose
// rotation the caller changes on stdin ("lb 0,2"). After "done" (rollout
// finished) it waits until every peer is connected again and reachable: a
// probe from peer i through the relays arrives at peer i+1.

import (
	"bufio"
	"flag"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type rollPeer struct {
	i            int
	id           []byte
	mu           sync.Mutex
	conn         *Conn
	downSince    int64
	downtimes    []int64
	closeMsgs    int
	abrupt       int
	failures     int
	reconnected  int
	probeRound   atomic.Int64
	probeArrived atomic.Int64
}

func runRolling(args []string) {
	fs := flag.NewFlagSet("rolling", flag.ExitOnError)
	urls := fs.String("urls", "", "relay URLs behind the simulated load balancer")
	peers := fs.Int("peers", 1000, "peers")
	firstDelay := fs.Duration("first-delay", 1500*time.Millisecond, "reconnect delay after losing the relay")
	backoff := fs.Duration("backoff", 2*time.Second, "first backoff after a failed attempt (doubles, +-50% jitter)")
	deadline := fs.Duration("deadline", 60*time.Second, "after done: give up waiting for peers after this")
	secret := fs.String("secret", "bench-secret", "relay auth secret")
	run := fs.String("run", time.Now().Format("150405.000000"), "run id")
	_ = fs.Parse(args)
	us := splitList(*urls)
	token := Token(*secret, time.Hour)
	var rotation atomic.Value
	all := make([]int, len(us))
	for i := range all {
		all[i] = i
	}
	rotation.Store(all)
	var stop atomic.Bool
	var down atomic.Int64
	var maxDown atomic.Int64
	ps := make([]*rollPeer, *peers)
	for i := range ps {
		ps[i] = &rollPeer{i: i, id: PeerID(run2(*run, "roll", i))}
	}
	index := map[string]int{}
	for i, p := range ps {
		index[string(p.id)] = i
	}

	pick := func(p *rollPeer, initial bool) string {
		if initial {
			return us[p.i%len(us)]
		}
		r := rotation.Load().([]int)
		if len(r) == 0 {
			return us[rand.Intn(len(us))]
		}
		return us[r[rand.Intn(len(r))]]
	}
	jitter := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * (0.5 + rand.Float64()))
	}
	var wg sync.WaitGroup
	var initialDone sync.WaitGroup
	initialDone.Add(len(ps))
	for _, p := range ps {
		p := p
		wg.Add(1)
		go func() {
			defer wg.Done()
			initial := true
			for !stop.Load() {
				attempt := 0
				var c *Conn
				for !stop.Load() {
					var err error
					c, _, err = Connect(pick(p, initial), "", p.id, token, 4096, 4096, 10*time.Second)
					if err == nil {
						break
					}
					p.mu.Lock()
					p.failures++
					p.mu.Unlock()
					d := *backoff << attempt
					if d > 60*time.Second {
						d = 60 * time.Second
					}
					attempt++
					time.Sleep(jitter(d))
				}
				if c == nil {
					return
				}
				at := now()
				p.mu.Lock()
				p.conn = c
				if p.downSince != 0 {
					p.downtimes = append(p.downtimes, at-p.downSince)
					p.downSince = 0
					p.reconnected++
					down.Add(-1)
				}
				p.mu.Unlock()
				if initial {
					initial = false
					initialDone.Done()
				}
				graceful := false
				for {
					m, err := c.Read()
					if err != nil {
						break
					}
					if len(m) < 2 {
						continue
					}
					switch m[1] {
					case msgHealthCheck:
						_ = c.Send(healthAnswer)
					case msgClose:
						graceful = true
					case msgTransport:
						if len(m) >= transportHdr+8 {
							p.probeArrived.Store(int64(readUint64(m[transportHdr:])))
						}
					}
					if graceful {
						break
					}
				}
				c.Close()
				if stop.Load() {
					return
				}
				p.mu.Lock()
				p.conn = nil
				p.downSince = now()
				if graceful {
					p.closeMsgs++
				} else {
					p.abrupt++
				}
				p.mu.Unlock()
				if n := down.Add(1); n > maxDown.Load() {
					maxDown.Store(n)
				}
				time.Sleep(*firstDelay)
			}
		}()
	}
	initialDone.Wait()
	event("ready", "peers", len(ps))

	sc := bufio.NewScanner(os.Stdin)
	var doneAt int64
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "lb") {
			var r []int
			for _, f := range splitList(strings.TrimSpace(strings.TrimPrefix(line, "lb"))) {
				n, _ := strconv.Atoi(f)
				r = append(r, n)
			}
			rotation.Store(r)
		}
		if line == "done" {
			doneAt = now()
			break
		}
	}
	if doneAt == 0 {
		doneAt = now()
	}
	// All connected?
	limit := doneAt + int64(*deadline)
	var allConnectedAt int64
	for now() < limit {
		n := 0
		for _, p := range ps {
			p.mu.Lock()
			if p.conn != nil {
				n++
			}
			p.mu.Unlock()
		}
		if n == len(ps) {
			allConnectedAt = now()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// All reachable: peer i sends a probe to peer i+1 until it arrives.
	var allReachableAt int64
	round := int64(1)
	probe := transportMessage(make([]byte, peerIDSize), 64)
	for now() < limit {
		missing := 0
		for i, p := range ps {
			dst := ps[(i+1)%len(ps)]
			if dst.probeArrived.Load() >= round {
				continue
			}
			missing++
			p.mu.Lock()
			c := p.conn
			p.mu.Unlock()
			if c == nil {
				continue
			}
			m := append([]byte(nil), probe...)
			copy(m[2:], dst.id)
			putUint64(m[transportHdr:], uint64(round))
			_ = c.Send(m)
		}
		if missing == 0 {
			allReachableAt = now()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	var downtimes []int64
	lost, unreachable, closeMsgs, abrupt, failures, reconnects := 0, 0, 0, 0, 0, 0
	for i, p := range ps {
		p.mu.Lock()
		downtimes = append(downtimes, p.downtimes...)
		if p.conn == nil {
			lost++
		}
		closeMsgs += p.closeMsgs
		abrupt += p.abrupt
		failures += p.failures
		reconnects += p.reconnected
		if p.conn != nil {
			p.conn.Close()
		}
		p.mu.Unlock()
		if ps[(i+1)%len(ps)].probeArrived.Load() < round {
			unreachable++
		}
	}
	ms := func(t int64) any {
		if t == 0 {
			return nil
		}
		return float64(t-doneAt) / 1e6
	}
	emit(map[string]any{
		"mode": "rolling", "peers": len(ps), "lost": lost, "unreachable": unreachable,
		"closeMessages": closeMsgs, "abruptDisconnects": abrupt, "failedAttempts": failures,
		"reconnects": reconnects, "maxDisconnectedAtOnce": maxDown.Load(),
		"allConnectedAfterDoneMs": ms(allConnectedAt), "allReachableAfterDoneMs": ms(allReachableAt),
		"downtime": percentiles(downtimes),
	})
	_ = index
	os.Exit(0)
}

func readUint64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func putUint64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}
