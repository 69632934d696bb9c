package main

// idle: open many authenticated peers that then sit idle (answering health
// checks), report handshakes/s, hold them until stdin says "close" (or the
// hold time ends), so the caller can read the relay's memory meanwhile.

import (
	"bufio"
	"flag"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func runIdle(args []string) {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	urls := fs.String("urls", "", "relay URLs (peer i uses entry i mod len)")
	peers := fs.Int("peers", 1000, "peers to open")
	offset := fs.Int("offset", 0, "first peer index (several generator processes)")
	concurrency := fs.Int("concurrency", 200, "handshakes in progress at once")
	hold := fs.Duration("hold", 30*time.Second, "how long to keep the peers at most")
	locals := fs.String("local-ips", "", "source addresses to rotate through (more ephemeral ports)")
	secret := fs.String("secret", "bench-secret", "relay auth secret")
	run := fs.String("run", time.Now().Format("150405.000000"), "run id")
	_ = fs.Parse(args)
	us := splitList(*urls)
	ls := splitList(*locals)
	token := Token(*secret, time.Hour)

	conns := make([]*Conn, *peers)
	lat := make([]int64, *peers)
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	startUnix := time.Now().UnixMilli()
	start := now()
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *peers {
					return
				}
				local := ""
				if len(ls) > 0 {
					local = ls[i%len(ls)]
				}
				t := now()
				c, _, err := Connect(us[i%len(us)], local, PeerID(run2(*run, "idle", *offset+i)), token, 512, 512, 20*time.Second)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat[i] = now() - t
				conns[i] = c
				go func() {
					for {
						m, err := c.Read()
						if err != nil {
							return
						}
						if len(m) >= 2 && m[1] == msgHealthCheck {
							_ = c.Send(healthAnswer)
						}
					}
				}()
			}
		}()
	}
	wg.Wait()
	elapsed := float64(now()-start) / 1e9
	endUnix := time.Now().UnixMilli()
	ok := *peers - int(failed.Load())
	var okLat []int64
	for i, c := range conns {
		if c != nil {
			okLat = append(okLat, lat[i])
		}
	}
	errText, _ := firstErr.Load().(string)
	event("connected", "connected", ok, "failed", failed.Load(), "startUnixMs", startUnix, "endUnixMs", endUnix,
		"seconds", elapsed, "firstError", errText)

	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "close" {
				break
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(*hold):
	}
	alive := 0
	for _, c := range conns {
		if c != nil {
			// A closed socket shows as a failed write only later; count what we still hold.
			alive++
			c.Close()
		}
	}
	emit(map[string]any{
		"mode": "idle", "peers": *peers, "connected": ok, "failed": failed.Load(), "firstError": errText,
		"seconds": elapsed, "handshakesPerSecond": float64(ok) / elapsed,
		"startUnixMs": startUnix, "endUnixMs": endUnix, "handshake": percentiles(okLat), "held": alive,
	})
}
