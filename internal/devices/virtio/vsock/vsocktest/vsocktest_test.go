package vsocktest

import (
	"bytes"
	"debug/elf"
	"errors"
	"testing"
)

// TestBuild compiles vsockecho and checks that it is a static executable
// (no interpreter), as a busybox guest needs.
func TestBuild(t *testing.T) {
	bin, err := Build(t.TempDir())
	if errors.Is(err, ErrNoCompiler) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("vsockecho is dynamically linked")
		}
	}
}
