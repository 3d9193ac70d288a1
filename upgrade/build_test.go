package upgrade_test

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// releasesFile lists the releases, oldest first; the newest release is the one the test
// upgrades from. A version with a pre-release suffix (v0.2.0-rc.1) is a point whose
// histories were recorded for the replay test, never deployed: the test does not start
// from it.
const releasesFile = "workflows/testdata/releases.txt"

type release struct {
	version, commit string
}

// newestRelease reads the last release line of releasesFile under root whose version has
// no pre-release suffix.
func newestRelease(root string) (release, error) {
	f, err := os.Open(filepath.Join(root, releasesFile))
	if err != nil {
		return release{}, err
	}
	defer f.Close()
	var last release
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || len(fields[1]) < 7 {
			return release{}, fmt.Errorf("%s:%d: want \"<version> <commit>\", got %q", releasesFile, n, line)
		}
		if strings.Contains(fields[0], "-") { // a pre-release: recorded, not deployed
			continue
		}
		last = release{version: fields[0], commit: fields[1]}
	}
	if err := sc.Err(); err != nil {
		return release{}, err
	}
	if last.commit == "" {
		return release{}, fmt.Errorf("%s lists no release", releasesFile)
	}
	return last, nil
}

// inCI reports whether the test runs in CI (CI set, as CI services set it), where what
// the test needs must be there: it fails rather than skips.
func inCI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v != "" && v != "false" && v != "0"
}

// unavailable skips the test, or fails it in CI, saying why it cannot run.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("the upgrade test cannot run, and CI must run it: %s", why)
	}
	t.Skipf("the upgrade test cannot run: %s", why)
}

// repoRoot is the module's root: the parent of this package's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s has no go.mod: %v", root, err)
	}
	return root
}

// binaries are the two builds of chatrabridge.
type binaries struct {
	old, new string
	release  release
}

// buildBinaries builds chatrabridge from the newest release's commit and from the current
// tree, concurrently, into dir. The release's tree is taken with git archive (no
// worktree to clean up, nothing outside dir).
func buildBinaries(t *testing.T, dir string) binaries {
	t.Helper()
	root := repoRoot(t)
	rel, err := newestRelease(root)
	if err != nil {
		t.Fatalf("the release to upgrade from: %v", err)
	}
	git, err := exec.LookPath("git")
	if err != nil {
		unavailable(t, "git is not installed (the test builds release %s from its commit)", rel.version)
	}
	if out, err := exec.Command(git, "-C", root, "rev-parse", "--git-dir").CombinedOutput(); err != nil {
		unavailable(t, "%s is not a git checkout (%s)", root, strings.TrimSpace(string(out)))
	}
	if err := exec.Command(git, "-C", root, "cat-file", "-e", rel.commit+"^{commit}").Run(); err != nil {
		unavailable(t, "commit %s of release %s (%s) is not in this clone (a shallow clone? git fetch --unshallow)",
			rel.commit, rel.version, releasesFile)
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("the go command is needed to build the binaries: %v", err)
		}
	}

	src := filepath.Join(dir, "release-src")
	if err := extractCommit(git, root, rel.commit, src); err != nil {
		t.Fatalf("extract release %s (%s): %v", rel.version, rel.commit, err)
	}
	b := binaries{old: filepath.Join(dir, "chatrabridge-old"), new: filepath.Join(dir, "chatrabridge-new"), release: rel}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, job := range []struct{ dir, out string }{{src, b.old}, {root, b.new}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// No symbol table or DWARF: a shorter link of a large binary (stack traces stay).
			cmd := exec.Command(goBin, "build", "-ldflags=-s -w", "-o", job.out, "./cmd/chatrabridge")
			cmd.Dir = job.dir
			cmd.Env = append(os.Environ(), "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build in %s: %v\n%s", job.dir, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("built chatrabridge %s (%.12s) and the current tree in %s", rel.version, rel.commit, time.Since(start).Round(time.Second))
	return b
}

// extractCommit writes the tree of commit into dir (git archive, read here: no tar
// command needed).
func extractCommit(git, root, commit, dir string) error {
	cmd := exec.Command(git, "-C", root, "archive", "--format=tar", commit)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	xerr := untar(out, dir)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return xerr
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		path := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777|0o200)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, path); err != nil {
				return err
			}
		}
	}
}

// The release the test upgrades from is the newest line that is a release: a recording
// point with a pre-release suffix, listed after it, is not deployed anywhere.
func TestNewestReleaseSkipsPreReleases(t *testing.T) {
	for _, tc := range []struct {
		lines string
		want  string
	}{
		{"v0.1.0 aaaaaaa\n", "v0.1.0"},
		{"v0.1.0 aaaaaaa\nv0.2.0-rc.1 bbbbbbb\n", "v0.1.0"},
		{"v0.1.0 aaaaaaa\nv0.2.0-rc.1 bbbbbbb\nv0.2.0 ccccccc\n", "v0.2.0"},
		{"# a comment\n\nv0.1.0 aaaaaaa\nv0.2.0 ccccccc\nv0.3.0-rc.1 ddddddd\n", "v0.2.0"},
	} {
		root := t.TempDir()
		file := filepath.Join(root, releasesFile)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(tc.lines), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := newestRelease(root)
		if err != nil {
			t.Fatalf("%q: %v", tc.lines, err)
		}
		if got.version != tc.want {
			t.Errorf("%q: newest release %s, want %s", tc.lines, got.version, tc.want)
		}
	}
	root := t.TempDir()
	file := filepath.Join(root, releasesFile)
	_ = os.MkdirAll(filepath.Dir(file), 0o755)
	_ = os.WriteFile(file, []byte("v0.2.0-rc.1 bbbbbbb\n"), 0o644)
	if got, err := newestRelease(root); err == nil {
		t.Errorf("only a pre-release listed: got %+v, want an error", got)
	}
}
