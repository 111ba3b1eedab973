package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Markers returns the comments that delimit the section called name in
// BENCHMARKS.md: <!-- name:begin --> and <!-- name:end -->.
func Markers(name string) (begin, end string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

// Section wraps body in the markers of the section called name; the
// result ends in a newline.
func Section(name, body string) string {
	begin, end := Markers(name)
	return begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end + "\n"
}

// ReplaceSection puts section (markers included) in place of the section
// called name in doc, or appends it, after a blank line, when doc has
// none. The rest of doc is left as it is.
func ReplaceSection(doc, name, section string) string {
	begin, end := Markers(name)
	section = strings.TrimSuffix(section, "\n")
	if i := strings.Index(doc, begin); i >= 0 {
		if j := strings.Index(doc[i:], end); j >= 0 {
			return doc[:i] + section + doc[i+j+len(end):]
		}
	}
	if doc != "" && !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	if doc != "" {
		doc += "\n"
	}
	return doc + section + "\n"
}

// Title is how UpdateFile starts a file that does not exist yet.
const Title = "# Vireo benchmarks\n"

// UpdateFile replaces the section called name in the file at path (or
// appends it; a missing file is created with Title). The file is read
// right before it is replaced, atomically, so that other programs'
// sections written meanwhile survive.
func UpdateFile(path, name, section string) error {
	return UpdateFileWith(path, name, section, Title)
}

// UpdateFileWith is UpdateFile creating a missing file with head instead
// of Title.
func UpdateFileWith(path, name, section, head string) error {
	old, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		old = []byte(head)
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	}
	doc := ReplaceSection(string(old), name, section)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bench-*.md")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(doc)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// DisplayPath shortens a path under $HOME to ~/...
func DisplayPath(p string) string {
	if home, err := os.UserHomeDir(); err == nil && home != "/" && strings.HasPrefix(p, home+string(filepath.Separator)) {
		return "~" + p[len(home):]
	}
	return p
}

// ShellJoin quotes words for a POSIX shell where needed.
func ShellJoin(words []string) string {
	q := make([]string, len(words))
	for i, s := range words {
		q[i] = ShellQuote(s)
	}
	return strings.Join(q, " ")
}

// ShellQuote quotes one word for a POSIX shell unless it needs none.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
