package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSection(t *testing.T) {
	got := Section("ctl", "## Title\n\nbody\n\n\n")
	want := "<!-- ctl:begin -->\n## Title\n\nbody\n<!-- ctl:end -->\n"
	if got != want {
		t.Errorf("Section = %q, want %q", got, want)
	}
}

func TestReplaceSection(t *testing.T) {
	sec := Section("ctl", "new")
	other := Section("boot", "boot results")
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "", sec},
		{"append", "# T\n\n" + other, "# T\n\n" + other + "\n" + sec},
		{"append without newline", "# T", "# T\n\n" + sec},
		{"replace", "# T\n\n<!-- ctl:begin -->\nold\n<!-- ctl:end -->\n\n" + other,
			"# T\n\n" + sec + "\n" + other},
		{"unterminated is appended", "# T\n<!-- ctl:begin -->\nold\n", "# T\n<!-- ctl:begin -->\nold\n\n" + sec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplaceSection(tc.doc, "ctl", sec); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestUpdateFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := UpdateFile(p, "ctl", Section("ctl", "first")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(b), "# Vireo benchmarks\n") || !strings.Contains(string(b), "first") {
		t.Fatalf("new file:\n%s", b)
	}
	// Another program's section written meanwhile survives the update.
	if err := os.WriteFile(p, append(b, "\n"+Section("boot", "boot")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateFile(p, "ctl", Section("ctl", "second")); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(p)
	s := string(b)
	if strings.Contains(s, "first") || !strings.Contains(s, "second") || !strings.Contains(s, "<!-- boot:begin -->\nboot\n") {
		t.Fatalf("updated file:\n%s", s)
	}
	if strings.Count(s, "<!-- ctl:begin -->") != 1 {
		t.Fatalf("section duplicated:\n%s", s)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

func TestUpdateFileWith(t *testing.T) {
	p := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	const head = "# Title\n\nIntroduction.\n"
	if err := UpdateFileWith(p, "ctl", Section("ctl", "one"), head); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := head + "\n" + Section("ctl", "one"); string(b) != want {
		t.Errorf("new file:\n%q\nwant\n%q", b, want)
	}
	// An existing file keeps its own head.
	if err := UpdateFileWith(p, "ctl", Section("ctl", "two"), "# Other\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(p)
	if want := head + "\n" + Section("ctl", "two"); string(b) != want {
		t.Errorf("rewritten file:\n%q\nwant\n%q", b, want)
	}
}

func TestDisplayPath(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil || home == "/" {
		t.Skip("no home directory")
	}
	if got := DisplayPath(filepath.Join(home, "k", "vmlinux")); got != "~/k/vmlinux" {
		t.Errorf("DisplayPath under home = %q", got)
	}
	if got := DisplayPath(home + "x/vmlinux"); got != home+"x/vmlinux" {
		t.Errorf("DisplayPath beside home = %q", got)
	}
}

func TestUpdateFileNoDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing", "B.md")
	if err := UpdateFile(p, "ctl", Section("ctl", "x")); err == nil {
		t.Fatal("UpdateFile into a missing directory succeeded")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"bin/vireo":           "bin/vireo",
		"unix:/tmp/x.sock":    "unix:/tmp/x.sock",
		"":                    "''",
		"console=ttyS0 quiet": "'console=ttyS0 quiet'",
		"it's":                `'it'\''s'`,
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := ShellJoin([]string{"go", "run", "./bench/control", "-bench", "qmp,start"}); got != "go run ./bench/control -bench qmp,start" {
		t.Errorf("ShellJoin = %s", got)
	}
}
