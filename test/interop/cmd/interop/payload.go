package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"
)

// Packets are generated deterministically from (stream, seq, size): a
// receiver regenerates the expected bytes and compares. Packets of at least
// headerLen bytes carry [seq u32][stream u32][crc32 of the rest u32], so loss,
// reordering and misdelivery (wrong stream) are told apart from corruption;
// shorter packets are checked against the next expected sequence number.
const headerLen = 12

func fill(stream, seq uint32, b []byte) {
	x := uint64(stream)<<32 | uint64(seq) | 1
	for i := range b {
		// xorshift64*
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		b[i] = byte((x * 2685821657736338717) >> 56)
	}
}

func makePacket(stream, seq uint32, size int) []byte {
	b := make([]byte, size)
	if size < headerLen {
		fill(stream, seq, b)
		return b
	}
	binary.BigEndian.PutUint32(b[0:4], seq)
	binary.BigEndian.PutUint32(b[4:8], stream)
	fill(stream, seq, b[headerLen:])
	binary.BigEndian.PutUint32(b[8:12], crc32.ChecksumIEEE(b[headerLen:]))
	return b
}

// sizeFn gives the size of packet seq.
type sizeFn func(seq uint32) int

// mtuSizes covers 1..max: the edges first, then a spread of sizes.
func mtuSizes(max int) sizeFn {
	edges := []int{1, 2, 11, 12, 13, 64, 500, max - 1, max}
	return func(seq uint32) int {
		if int(seq) < len(edges) {
			return edges[seq]
		}
		return 1 + int((uint64(seq)*2654435761)%uint64(max))
	}
}

func fixedSizes(sizes ...int) sizeFn {
	return func(seq uint32) int { return sizes[int(seq)%len(sizes)] }
}

type streamStats struct {
	Sent      int
	Received  int
	Lost      int
	Corrupt   int
	Reordered int
	FirstErr  string
}

func (s *streamStats) ok() bool {
	return s.FirstErr == "" && s.Received == s.Sent && s.Lost == 0 && s.Corrupt == 0 && s.Reordered == 0
}

func (s *streamStats) fail(format string, args ...any) {
	if s.FirstErr == "" {
		s.FirstErr = fmt.Sprintf(format, args...)
	}
}

// verifier checks one direction's packets in arrival order.
type verifier struct {
	stream uint32
	sizes  sizeFn
	next   uint32
	st     *streamStats
}

func (v *verifier) check(pkt []byte) {
	v.st.Received++
	seq := v.next
	if len(pkt) >= headerLen {
		seq = binary.BigEndian.Uint32(pkt[0:4])
		if s := binary.BigEndian.Uint32(pkt[4:8]); s != v.stream {
			v.st.Corrupt++
			v.st.fail("packet of stream %d delivered on stream %d (misrouted)", s, v.stream)
			return
		}
		if crc32.ChecksumIEEE(pkt[headerLen:]) != binary.BigEndian.Uint32(pkt[8:12]) {
			v.st.Corrupt++
			v.st.fail("stream %d seq %d: checksum mismatch (len %d)", v.stream, seq, len(pkt))
			return
		}
	}
	want := makePacket(v.stream, seq, v.sizes(seq))
	if !bytes.Equal(pkt, want) {
		v.st.Corrupt++
		v.st.fail("stream %d seq %d: got %d bytes, want %d bytes of the expected content", v.stream, seq, len(pkt), len(want))
		return
	}
	switch {
	case seq < v.next:
		v.st.Reordered++
		v.st.fail("stream %d: seq %d arrived after %d", v.stream, seq, v.next-1)
	case seq > v.next:
		v.st.Lost += int(seq - v.next)
		v.st.fail("stream %d: seq %d..%d missing", v.stream, v.next, seq-1)
		v.next = seq + 1
	default:
		v.next = seq + 1
	}
}

// window bounds the packets of one stream in flight (sent, not yet
// received): the NetBird client queues at most 100 messages per conn and
// drops the rest of a burst, so an unbounded sender would turn any stall on
// the path (a busy 2-core machine) into client-side loss. Both ends run in
// this process, so the sender can see the receiver's progress.
// Set by -window (0: no window).
var window = 50

// sendPaced writes count packets at about rate packets per second, never
// more than window ahead of the receiver.
func sendPaced(pc *pconn, stream uint32, count int, sizes sizeFn, rate int, received *atomic.Int64, st *streamStats) {
	interval := time.Duration(0)
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	next := time.Now()
	for i := 0; i < count; i++ {
		if interval > 0 {
			if d := time.Until(next); d > time.Millisecond {
				time.Sleep(d)
			} else if d < -20*time.Millisecond {
				next = time.Now() // fell behind: no catch-up burst
			}
			next = next.Add(interval)
		}
		if received != nil && window > 0 {
			stuck := time.Now().Add(5 * time.Second)
			for int64(i)-received.Load() >= int64(window) {
				if time.Now().After(stuck) {
					st.fail("stream %d: receiver stuck at %d with %d sent", stream, received.Load(), i)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
		if err := pc.write(makePacket(stream, uint32(i), sizes(uint32(i)))); err != nil {
			st.fail("stream %d: write seq %d: %v", stream, i, err)
			return
		}
		st.Sent++
	}
}

// receive reads until count packets arrived or nothing came for idle.
func receive(pc *pconn, stream uint32, count int, sizes sizeFn, idle time.Duration, received *atomic.Int64, st *streamStats) {
	v := &verifier{stream: stream, sizes: sizes, st: st}
	for st.Received < count {
		pkt, err := pc.recv(idle)
		if err != nil {
			st.fail("stream %d: %d of %d packets received, then %v", stream, st.Received, count, err)
			return
		}
		v.check(pkt)
		// Lost packets count as received for the window, so one loss does
		// not stall the sender.
		received.Store(int64(v.next))
	}
}

// exchange sends count packets each way between a and b concurrently and
// verifies both directions.
func exchange(a, b *pconn, streamAB, streamBA uint32, count int, sizes sizeFn, rate int) (ab, ba *streamStats) {
	ab, ba = &streamStats{}, &streamStats{}
	var wg sync.WaitGroup
	recvAB, recvBA := &streamStats{}, &streamStats{}
	var gotAB, gotBA atomic.Int64
	wg.Add(4)
	go func() { defer wg.Done(); receive(b, streamAB, count, sizes, 5*time.Second, &gotAB, recvAB) }()
	go func() { defer wg.Done(); receive(a, streamBA, count, sizes, 5*time.Second, &gotBA, recvBA) }()
	go func() { defer wg.Done(); sendPaced(a, streamAB, count, sizes, rate, &gotAB, ab) }()
	go func() { defer wg.Done(); sendPaced(b, streamBA, count, sizes, rate, &gotBA, ba) }()
	wg.Wait()
	merge(ab, recvAB)
	merge(ba, recvBA)
	return ab, ba
}

func merge(dst, recv *streamStats) {
	dst.Received, dst.Lost, dst.Corrupt, dst.Reordered = recv.Received, recv.Lost, recv.Corrupt, recv.Reordered
	if dst.FirstErr == "" {
		dst.FirstErr = recv.FirstErr
	}
}

// pingPong sends one packet each way and checks both.
func pingPong(a, b *pconn, stream uint32, size int) error {
	ab, ba := exchange(a, b, stream, stream+1, 1, fixedSizes(size), 0)
	if !ab.ok() {
		return fmt.Errorf("a->b: %s", orStr(ab.FirstErr, "not delivered"))
	}
	if !ba.ok() {
		return fmt.Errorf("b->a: %s", orStr(ba.FirstErr, "not delivered"))
	}
	return nil
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
