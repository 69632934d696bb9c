package main

// throughput: N sender->receiver pairs of transport messages through a relay
// (or raw records through a TCP splice). Either as fast as a per-pair window
// of in-flight messages allows (closed loop, no drops) or at a fixed total rate
// (open loop, for latency). Sender and receiver run in this process, so the
// one-way latency uses one monotonic clock.

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

type pair struct {
	tx, rx      *Conn
	dst         []byte
	recvSeq     atomic.Uint64
	wake        chan struct{}
	received    atomic.Uint64 // messages sent inside the window and received
	sentInWin   atomic.Uint64
	firstSeen   atomic.Bool
	lat         []int64
	sentAt      []int64 // send times of lat's samples, kept only for -timeline
	sampleEvery uint64
}

func runThroughput(args []string) {
	fs := flag.NewFlagSet("throughput", flag.ExitOnError)
	sendURLs := fs.String("send-urls", "", "relay URLs for senders (pair i uses entry i mod len)")
	recvURLs := fs.String("recv-urls", "", "relay URLs for receivers (default: send-urls)")
	raw := fs.String("raw", "", "host:port of a TCP splice instead of a relay")
	pairs := fs.Int("pairs", 1, "sender/receiver pairs")
	size := fs.Int("size", 1400, "payload bytes per transport message")
	duration := fs.Duration("duration", 10*time.Second, "measured window")
	warmup := fs.Duration("warmup", 2*time.Second, "full load before the window")
	window := fs.Int("window", 64, "max in-flight messages per pair (closed loop)")
	rate := fs.Float64("rate", 0, "total messages/s, open loop (0 = closed loop, as fast as possible)")
	secret := fs.String("secret", "bench-secret", "relay auth secret")
	maxSamples := fs.Int("max-samples", 2_000_000, "latency samples kept")
	flushBytes := fs.Int("flush-bytes", 32*1024, "sender flushes when this much is buffered")
	run := fs.String("run", "", "run id mixed into peer identifiers")
	timeline := fs.String("timeline", "", "write every latency sample as 'pair,sent_us,latency_us' to this file (diagnosis of tails)")
	_ = fs.Parse(args)
	if *size < 16 {
		fatal("size must be >= 16")
	}
	if *run == "" {
		*run = time.Now().Format("150405.000000")
	}
	msgLen := transportHdr + *size
	token := Token(*secret, time.Hour)
	sends, recvs := splitList(*sendURLs), splitList(*recvURLs)
	if len(recvs) == 0 {
		recvs = sends
	}
	if *raw == "" && len(sends) == 0 {
		fatal("need -send-urls or -raw")
	}

	var stopFlag atomic.Bool
	var winStart, winEnd atomic.Int64
	winStart.Store(math.MaxInt64)
	winEnd.Store(math.MaxInt64)

	ps := make([]*pair, *pairs)
	perPair := *maxSamples / *pairs
	for i := range ps {
		p := &pair{wake: make(chan struct{}, 1), lat: make([]int64, 0, perPair)}
		if *timeline != "" {
			p.sentAt = make([]int64, 0, perPair)
		}
		rxID := PeerID(run2(*run, "rx", i))
		txID := PeerID(run2(*run, "tx", i))
		p.dst = rxID
		var err error
		if *raw != "" {
			// The splice pairs its accepted connections 2k and 2k+1: connect in order.
			if p.tx, err = DialRaw(*raw, "", 256*1024, 64*1024, 5*time.Second); err != nil {
				fatal("dial: %v", err)
			}
			if p.rx, err = DialRaw(*raw, "", 256*1024, 64*1024, 5*time.Second); err != nil {
				fatal("dial: %v", err)
			}
			time.Sleep(2 * time.Millisecond)
		} else {
			if p.rx, _, err = Connect(recvs[i%len(recvs)], "", rxID, token, 256*1024, 4096, 10*time.Second); err != nil {
				fatal("receiver %d: %v", i, err)
			}
			if p.tx, _, err = Connect(sends[i%len(sends)], "", txID, token, 64*1024, 64*1024, 10*time.Second); err != nil {
				fatal("sender %d: %v", i, err)
			}
		}
		ps[i] = p
	}
	logf("%d pairs connected", *pairs)

	var wg sync.WaitGroup
	// Receivers.
	for _, p := range ps {
		p := p
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var m []byte
				var err error
				if p.rx.raw {
					m, err = p.rx.ReadRecord(msgLen)
				} else {
					m, err = p.rx.Read()
				}
				if err != nil {
					return
				}
				if len(m) < 2 {
					continue
				}
				if m[1] == msgHealthCheck {
					_ = p.rx.Send(healthAnswer)
					continue
				}
				if m[1] != msgTransport || len(m) < transportHdr+16 {
					continue
				}
				seq, ts := readStamp(m)
				p.recvSeq.Store(seq)
				if !p.firstSeen.Load() {
					p.firstSeen.Store(true)
				}
				if ts >= winStart.Load() && ts < winEnd.Load() {
					p.received.Add(1)
					if len(p.lat) < cap(p.lat) {
						p.lat = append(p.lat, now()-ts)
						if p.sentAt != nil {
							p.sentAt = append(p.sentAt, ts)
						}
					}
				}
				if p.rx.Buffered() == 0 {
					select {
					case p.wake <- struct{}{}:
					default:
					}
				}
			}
		}()
		if !p.tx.raw {
			// Senders answer health checks too.
			go func() {
				for {
					m, err := p.tx.Read()
					if err != nil {
						return
					}
					if len(m) >= 2 && m[1] == msgHealthCheck {
						_ = p.tx.Send(healthAnswer)
					}
				}
			}()
		}
	}

	// Route warm-up: a trickle until every receiver has heard from its sender
	// (in a cluster the sender's pod must learn where the receiver is).
	routeStart := time.Now()
	for {
		missing := 0
		for _, p := range ps {
			if p.firstSeen.Load() {
				continue
			}
			missing++
			m := transportMessage(p.dst, *size)
			putStamp(m, 0, now())
			_ = p.tx.Send(m)
		}
		if missing == 0 {
			break
		}
		if time.Since(routeStart) > 15*time.Second {
			fatal("%d pairs never delivered a message", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	routeMs := time.Since(routeStart).Milliseconds()

	// Senders.
	var sendWG sync.WaitGroup
	for i, p := range ps {
		p := p
		i := i
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			m := transportMessage(p.dst, *size)
			binary.LittleEndian.PutUint32(m[transportHdr+16:], uint32(i))
			var seq, floor uint64
			seq = p.recvSeq.Load()
			floor = seq
			timer := time.NewTimer(time.Hour)
			write := func() {
				seq++
				ts := now()
				putStamp(m, seq, ts)
				p.tx.wmu.Lock()
				p.tx.Append(m)
				if p.tx.bw.Buffered() >= *flushBytes {
					_ = p.tx.Flush()
				}
				p.tx.wmu.Unlock()
				if ts >= winStart.Load() && ts < winEnd.Load() {
					p.sentInWin.Add(1)
				}
			}
			flush := func() {
				p.tx.wmu.Lock()
				_ = p.tx.Flush()
				p.tx.wmu.Unlock()
			}
			if *rate > 0 {
				interval := float64(*pairs) / *rate * 1e9
				// Stagger the pairs across one interval.
				start := now() + int64(interval*float64(i)/float64(*pairs))
				sent := uint64(0)
				for !stopFlag.Load() {
					due := uint64(float64(now()-start)/interval) + 1
					if now() < start {
						due = 0
					}
					burst := 0
					for sent < due && burst < 1000 {
						write()
						sent++
						burst++
					}
					flush()
					next := start + int64(float64(sent)*interval)
					if d := next - now(); d > 0 {
						time.Sleep(time.Duration(d))
					}
				}
				return
			}
			for !stopFlag.Load() {
				acked := p.recvSeq.Load()
				if acked < floor {
					acked = floor
				}
				if seq-acked >= uint64(*window) {
					flush()
					timer.Reset(50 * time.Millisecond)
					select {
					case <-p.wake:
						if !timer.Stop() {
							<-timer.C
						}
					case <-timer.C:
						// No progress: whatever is in flight was dropped.
						if p.recvSeq.Load() <= acked {
							floor = seq
						}
					}
					continue
				}
				write()
			}
			flush()
		}()
	}

	time.Sleep(*warmup)
	winStart.Store(now())
	event("measure-start")
	t0 := time.Now()
	time.Sleep(*duration)
	winEnd.Store(now())
	event("measure-end")
	seconds := time.Since(t0).Seconds()
	stopFlag.Store(true)
	sendWG.Wait()
	time.Sleep(300 * time.Millisecond)

	var received, sent uint64
	var all []int64
	for _, p := range ps {
		received += p.received.Load()
		sent += p.sentInWin.Load()
	}
	for _, p := range ps {
		p.tx.Close()
		p.rx.Close()
	}
	wg.Wait()
	for _, p := range ps {
		all = append(all, p.lat...)
	}
	if *timeline != "" {
		writeTimeline(*timeline, ps, winStart.Load())
	}
	mps := float64(received) / seconds
	emit(map[string]any{
		"mode": "throughput", "pairs": *pairs, "payloadBytes": *size, "messageBytes": msgLen,
		"raw": *raw != "", "rateTarget": *rate, "window": *window,
		"seconds": seconds, "sent": sent, "received": received,
		"lost":              int64(sent) - int64(received),
		"messagesPerSecond": math.Round(mps),
		"gbitPerSecond":     math.Round(mps*float64(msgLen)*8/1e6) / 1e3,
		"routeWarmupMs":     routeMs,
		"latency":           percentiles(all),
	})
}

func run2(run, role string, i int) string {
	return "bench-" + run + "-" + role + "-" + itoa(i)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}

// writeTimeline: one line per latency sample, in order of arrival per pair, so
// that slow messages can be placed in time (bursts every so often, or spread).
func writeTimeline(path string, ps []*pair, start int64) {
	f, err := os.Create(path)
	if err != nil {
		fatal("timeline: %v", err)
	}
	w := bufio.NewWriter(f)
	for i, p := range ps {
		for j, lat := range p.lat {
			fmt.Fprintf(w, "%d,%d,%d\n", i, (p.sentAt[j]-start)/1000, lat/1000)
		}
	}
	if err := w.Flush(); err != nil {
		fatal("timeline: %v", err)
	}
	_ = f.Close()
}
