package graylane

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering checks the package graph that doc.go draws: the pick engine
// is pure (no net/http, no zap, nothing of the runtime, no gRPC), and
// neither the expression compiler nor the rule package imports net/http.
// It asks the go tool, so it sees exactly what the compiler sees.
func TestLayering(t *testing.T) {
	const mod = "github.com/graylane/graylane/"
	tests := []struct {
		pkg string
		// banned direct imports
		direct []string
		// banned anywhere among the dependencies (prefix match)
		deps []string
	}{
		{
			pkg:    mod + "balancer/pick",
			direct: []string{"net/http", "go.uber.org/zap", "net"},
			deps:   []string{mod + "balancer", "google.golang.org/grpc", "go.yaml.in/yaml/v3/cmd"},
		},
		{pkg: mod + "expr", direct: []string{"net/http", "net/textproto", "net/url"}},
		{pkg: mod + "rule", direct: []string{"net/http", "go.uber.org/zap"}},
	}
	for _, tt := range tests {
		imports := goList(t, "{{join .Imports \"\\n\"}}", tt.pkg)
		for _, imp := range imports {
			for _, bad := range tt.direct {
				if imp == bad {
					t.Errorf("%s imports %s", tt.pkg, imp)
				}
			}
		}
		for _, dep := range goList(t, "{{join .Deps \"\\n\"}}", tt.pkg) {
			for _, bad := range tt.deps {
				if dep == bad || strings.HasPrefix(dep, bad+"/") && !strings.HasPrefix(dep, tt.pkg) {
					t.Errorf("%s depends on %s", tt.pkg, dep)
				}
			}
		}
	}
}

func goList(t *testing.T, format, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", format, pkg).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}
