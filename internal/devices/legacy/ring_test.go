package legacy

import (
	"bytes"
	"testing"
)

func TestRingWrap(t *testing.T) {
	r := newRing(5)
	if n := r.write([]byte("abcdefg")); n != 5 || !r.full() {
		t.Fatalf("write took %d bytes, full=%v", n, r.full())
	}
	buf := make([]byte, 3)
	if n := r.read(buf); n != 3 || string(buf) != "abc" {
		t.Fatalf("read %q", buf[:n])
	}
	if n := r.write([]byte("xyz!")); n != 3 {
		t.Fatalf("write after wrap took %d bytes, want 3", n)
	}
	if got := r.bytes(); !bytes.Equal(got, []byte("dexyz")) {
		t.Fatalf("contents %q", got)
	}
	if b, ok := r.pop(); !ok || b != 'd' {
		t.Fatalf("pop = %q, %v", b, ok)
	}
	all := make([]byte, 10)
	if n := r.read(all); string(all[:n]) != "exyz" || r.len() != 0 {
		t.Fatalf("drained %q, %d left", all[:n], r.len())
	}
	if _, ok := r.pop(); ok {
		t.Fatal("pop from an empty ring")
	}
	if r.load(make([]byte, 6)) {
		t.Fatal("load of 6 bytes into 5 succeeded")
	}
}
