package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// devStack are the packages (and the trees below them) that only `dev`, `demo` and
// `sandbox` need: the embedded Temporal server, the Web UI server, the sandbox and the demo.
var devStack = []string{
	"go.temporal.io/server",
	"github.com/temporalio/ui-server",
	"github.com/chatrabridge/chatrabridge/internal/devserver",
	"github.com/chatrabridge/chatrabridge/internal/sandbox",
	"github.com/chatrabridge/chatrabridge/internal/demo",
}

// under lists the packages of set at or below root.
func under(set map[string]bool, root string) []string {
	var ps []string
	for p := range set {
		if p == root || strings.HasPrefix(p, root+"/") {
			ps = append(ps, p)
		}
	}
	return ps
}

func deps(t *testing.T, tags string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-tags="+tags, ".").Output()
	if err != nil {
		t.Fatalf("go list -deps -tags=%q: %v", tags, err)
	}
	set := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		set[p] = true
	}
	return set
}

// The production build (-tags nodev, the Dockerfile's) links none of the dev stack, and the
// default build (make dev, go run) links all of it.
func TestProductionBuildHasNoDevStack(t *testing.T) {
	full, prod := deps(t, ""), deps(t, "nodev")
	for _, root := range devStack {
		if len(under(full, root)) == 0 {
			t.Errorf("the default build links nothing of %s: is the list above out of date?", root)
		}
		if ps := under(prod, root); len(ps) > 0 {
			t.Errorf("the production build (-tags nodev) links %d packages of %s, e.g. %s", len(ps), root, ps[0])
		}
	}
	for _, p := range []string{"go.temporal.io/sdk/client", "github.com/chatrabridge/chatrabridge/api", "github.com/chatrabridge/chatrabridge/worker"} {
		if !prod[p] {
			t.Errorf("the production build does not link %s", p)
		}
	}
}

// `dev` in the production build says what it is and what to run instead.
func TestProductionBuildAnswersDev(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "chatrabridge")
	if out, err := exec.Command("go", "build", "-tags=nodev", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nodev: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "dev")
	cmd.Env = append(os.Environ(), "DATABASE_URL=postgres://127.0.0.1:1/none")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("dev in the production build exited 0:\n%s", out)
	}
	if !strings.Contains(string(out), "production build (-tags nodev)") || !strings.Contains(string(out), "make dev") {
		t.Errorf("dev in the production build: %s", out)
	}
	if out, err := exec.Command(bin, "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "worker") || strings.Contains(string(out), "sandbox") {
		t.Errorf("--help of the production build lists worker and hides the dev stack: %v\n%s", err, out)
	}
}
