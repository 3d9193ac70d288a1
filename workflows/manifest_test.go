package workflows

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// manifestName is the file in testdata that lists every recorded history with its
// SHA-256, in sha256sum's format, sorted by path: `sha256sum -c MANIFEST` in testdata
// checks it too.
const manifestName = "MANIFEST"

// appendOnly ends every complaint about a recorded history: what to do instead.
const appendOnly = "recorded histories are append-only; record new ones with `make histories RELEASE=...`"

// checkManifest reports how the histories (*.json, at any depth) under dir differ from
// dir's MANIFEST: a listed file that is missing or whose SHA-256 changed, a history
// that is not listed, a malformed, repeated or unsorted line. Each problem names the
// file; nil means the manifest and the histories agree.
//
// The replay test proves that the current code replays the recorded histories; this
// proves that those histories are still the ones recorded. A history edited (or
// deleted, or recorded again) until it replays would prove nothing about the
// conversations that ran with the code it was recorded with.
func checkManifest(dir string) error {
	listed, err := readManifest(filepath.Join(dir, manifestName))
	if err != nil {
		return err
	}
	var problems []error
	var paths []string
	for _, e := range listed {
		paths = append(paths, e.path)
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.path)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, fmt.Errorf("%s is listed in %s but missing: %s", e.path, manifestName, appendOnly))
			continue
		case err != nil:
			problems = append(problems, fmt.Errorf("%s: %w", e.path, err))
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.sum {
			problems = append(problems, fmt.Errorf("%s changed since it was recorded (sha256 %x, %s says %s): %s",
				e.path, sum, manifestName, e.sum, appendOnly))
		}
	}
	if !slices.IsSorted(paths) {
		problems = append(problems, fmt.Errorf("%s is not sorted by path", manifestName))
	}
	for i := 1; i < len(paths); i++ {
		if paths[i] == paths[i-1] {
			problems = append(problems, fmt.Errorf("%s lists %s twice", manifestName, paths[i]))
		}
	}
	onDisk, err := histories(dir)
	if err != nil {
		return err
	}
	for _, p := range onDisk {
		if !slices.Contains(paths, p) {
			problems = append(problems, fmt.Errorf("%s is not listed in %s: %s", p, manifestName, appendOnly))
		}
	}
	return errors.Join(problems...)
}

// manifestEntry is one line of the MANIFEST: a file's SHA-256 (hex) and its path
// relative to the manifest's directory, with forward slashes.
type manifestEntry struct{ sum, path string }

func readManifest(file string) ([]manifestEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read the list of recorded histories: %w", err)
	}
	defer f.Close()
	var out []manifestEntry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 2*sha256.Size || path == "" {
			return nil, fmt.Errorf("%s line %d: want `<sha256>  <path>`, got %q", file, n, sc.Text())
		}
		out = append(out, manifestEntry{sum: sum, path: path})
	}
	return out, sc.Err()
}

// histories lists the recorded histories under dir (every *.json, at any depth) by their
// path relative to dir, with forward slashes, sorted.
func histories(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	slices.Sort(out)
	return out, err
}

// The recorded histories are the ones listed in testdata/MANIFEST, unchanged.
func TestHistoryManifest(t *testing.T) {
	if err := checkManifest("testdata"); err != nil {
		t.Fatal(err)
	}
}

// The manifest check catches a history changed by one byte, one deleted and one added
// without being listed, naming the file each time.
func TestHistoryManifestCatchesChanges(t *testing.T) {
	files, err := histories("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata")
	}
	victim := files[len(files)-1]
	for _, tc := range []struct {
		name   string
		change func(dir string) error
		file   string
		want   string
	}{
		{"one byte changed", func(dir string) error {
			p := filepath.Join(dir, filepath.FromSlash(victim))
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			i := len(b) / 2
			b[i] ^= 0x01
			return os.WriteFile(p, b, 0o644)
		}, victim, "changed since it was recorded"},
		{"deleted", func(dir string) error {
			return os.Remove(filepath.Join(dir, filepath.FromSlash(victim)))
		}, victim, "missing"},
		{"added, not listed", func(dir string) error {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(victim)))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dir, "v9.9.9"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "v9.9.9", "unlisted.json"), b, 0o644)
		}, "v9.9.9/unlisted.json", "not listed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS("testdata")); err != nil {
				t.Fatal(err)
			}
			if err := checkManifest(dir); err != nil {
				t.Fatalf("the unchanged copy: %v", err)
			}
			if err := tc.change(dir); err != nil {
				t.Fatal(err)
			}
			err := checkManifest(dir)
			if err == nil {
				t.Fatal("not caught")
			}
			for _, want := range []string{tc.file, tc.want, "append-only", "make histories RELEASE="} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

var releaseLine = regexp.MustCompile(`^(v[0-9]+\.[0-9]+\.[0-9]+\S*) ([0-9a-f]{40})$`)

// testdata/releases.txt names each release once, with its full commit (the first is
// v0.1.0), and every directory of histories in testdata is one of them.
func TestReleases(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "releases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := releaseLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("releases.txt line %d: want `<version> <40-hex commit>`, got %q", n+1, line)
			continue
		}
		if slices.Contains(versions, m[1]) {
			t.Errorf("releases.txt line %d: %s again", n+1, m[1])
		}
		versions = append(versions, m[1])
	}
	if len(versions) == 0 || versions[0] != "v0.1.0" {
		t.Errorf("releases.txt lists %v, want v0.1.0 first", versions)
	}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(versions, e.Name()) {
			t.Errorf("testdata/%s holds histories of a release releases.txt does not name", e.Name())
		}
	}
}
