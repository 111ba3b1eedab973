// Package netguest is the guest side of the network tests and benchmarks:
// vnetperf, a small static C program that sends or receives a
// deterministic pseudo-random byte stream over TCP and checks it, and the
// Go twin of that stream and of its hash for the host side.
package netguest

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vireo-vmm/vireo/internal/initramfs"
)

//go:embed src/vnetperf.c
var source []byte

// GuestPath is where Initramfs puts vnetperf.
const GuestPath = "/bin/vnetperf"

// ErrBuild reports that vnetperf could not be compiled.
var ErrBuild = errors.New("netguest: cannot build vnetperf")

// Build compiles vnetperf as a static binary in dir (gcc and the C
// library's static archive are needed) and returns its path.
func Build(dir string) (string, error) {
	src := filepath.Join(dir, "vnetperf.c")
	bin := filepath.Join(dir, "vnetperf")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	out, err := exec.Command("gcc", "-static", "-O2", "-s", "-Wall", "-o", bin, src).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: gcc: %w\n%s", ErrBuild, err, out)
	}
	return bin, nil
}

// Initramfs writes the default busybox guest with vnetperf at GuestPath
// and the given extra files (guest path -> content; executables under
// /etc/vireo-init.d run before the shell) to path, uncompressed.
func Initramfs(path, vnetperf string, extra map[string][]byte) error {
	bin, err := os.ReadFile(vnetperf)
	if err != nil {
		return fmt.Errorf("netguest: %w", err)
	}
	files := map[string][]byte{GuestPath: bin}
	for k, v := range extra {
		files[k] = v
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("netguest: %w", err)
	}
	if err := initramfs.Build(f, initramfs.Options{Extra: files}); err != nil {
		f.Close()
		return fmt.Errorf("netguest: %w", err)
	}
	return f.Close()
}

// Stream is vnetperf's byte stream for a seed, as an io.Reader that never
// ends: xorshift64* output, eight little-endian bytes per step.
type Stream struct {
	state uint64
	word  [8]byte
	left  int
}

// NewStream starts the stream of seed.
func NewStream(seed uint64) *Stream {
	return &Stream{state: seed*0x9E3779B97F4A7C15 + 1}
}

func (s *Stream) next() uint64 {
	x := s.state
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	s.state = x
	return x * 0x2545F4914F6CDD1D
}

// Read fills p with the next len(p) bytes of the stream.
func (s *Stream) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && s.left > 0 {
		p[0] = s.word[8-s.left]
		p, s.left = p[1:], s.left-1
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, s.next())
		p = p[8:]
	}
	if len(p) > 0 {
		binary.LittleEndian.PutUint64(s.word[:], s.next())
		s.left = 8
		k := copy(p, s.word[:])
		s.left -= k
	}
	return n, nil
}

// Hash is vnetperf's checksum: FNV-1a over little-endian 64-bit words, a
// final partial word zero-padded. It implements io.Writer.
type Hash struct {
	h       uint64
	partial uint64
	have    int
}

// NewHash returns an empty hash.
func NewHash() *Hash { return &Hash{h: 0xcbf29ce484222325} }

func (h *Hash) word(w uint64) {
	h.h ^= w
	h.h *= 0x100000001b3
}

// Write adds p to the hash.
func (h *Hash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && h.have > 0 {
		h.partial |= uint64(p[0]) << (8 * h.have)
		p = p[1:]
		if h.have++; h.have == 8 {
			h.word(h.partial)
			h.partial, h.have = 0, 0
		}
	}
	for len(p) >= 8 {
		h.word(binary.LittleEndian.Uint64(p))
		p = p[8:]
	}
	for _, b := range p {
		h.partial |= uint64(b) << (8 * h.have)
		h.have++
	}
	return n, nil
}

// Sum64 is the hash of everything written so far.
func (h *Hash) Sum64() uint64 {
	c := *h
	if c.have > 0 {
		c.word(c.partial)
	}
	return c.h
}

// Expected is the hash vnetperf reports for n bytes of the stream seed.
func Expected(n int64, seed uint64) uint64 {
	s, h := NewStream(seed), NewHash()
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		s.Read(buf[:k])
		h.Write(buf[:k])
		n -= k
	}
	return h.Sum64()
}
