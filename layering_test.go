package graylane

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering checks the package graph that doc.go draws: the pick engine
// is pure (no net/http, no zap, nothing of the runtime, no gRPC, nothing of
// Consul), and neither the expression compiler nor the rule package imports
// net/http. It asks the go tool, so it sees exactly what the compiler sees.
//
// The engine takes its instances from discovery/instance, the plain data
// of discovery, never from discovery itself, the Consul client: no
// HashiCorp package may be among its dependencies.
//
// One dependency brings net/http into every closure here, and is the only
// one allowed to: zap (expr logs an evaluation that panicked through the
// caller's *zap.Logger, and zap ships an HTTP level handler). Past zap, no
// package of the closure may import net/http or net: a new import that
// pulls in networking fails here even when it does so indirectly.
func TestLayering(t *testing.T) {
	const mod = "github.com/graylane/graylane/"
	tests := []struct {
		pkg string
		// banned direct imports
		direct []string
		// banned anywhere among the dependencies (prefix match)
		deps []string
		// allowed are the dependencies whose own closures are not checked
		// for the imports in closure; every other package of pkg's closure
		// (pkg included) must import none of them.
		allowed []string
		closure []string
	}{
		{
			pkg:     mod + "balancer/pick",
			direct:  []string{"net/http", "go.uber.org/zap", "net", mod + "discovery"},
			deps:    []string{mod + "balancer", "google.golang.org/grpc", "go.yaml.in/yaml/v3/cmd", "github.com/hashicorp"},
			allowed: []string{"go.uber.org/zap"},
			closure: []string{"net/http", "net"},
		},
		{
			pkg:     mod + "discovery/instance",
			direct:  []string{"net/http", "go.uber.org/zap", "net"},
			deps:    []string{mod + "discovery", "github.com/hashicorp", "go.uber.org/zap"},
			closure: []string{"net/http", "net"},
		},
		{
			pkg:     mod + "expr",
			direct:  []string{"net/http", "net/textproto", "net/url"},
			allowed: []string{"go.uber.org/zap"},
			closure: []string{"net/http", "net"},
		},
		{
			pkg:     mod + "rule",
			direct:  []string{"net/http", "go.uber.org/zap"},
			allowed: []string{"go.uber.org/zap"},
			closure: []string{"net/http", "net"},
		},
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
		for _, p := range unexcused(importGraph(t, tt.pkg), tt.pkg, tt.allowed) {
			for _, bad := range tt.closure {
				if p.imports[bad] {
					t.Errorf("%s depends on %s, which imports %s", tt.pkg, p.path, bad)
				}
			}
		}
	}
}

// pkgImports is one package of a closure and its direct imports.
type pkgImports struct {
	path    string
	imports map[string]bool
}

// importGraph returns every package of pkg's closure, pkg included, with
// its direct imports.
func importGraph(t *testing.T, pkg string) map[string]pkgImports {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	g := make(map[string]pkgImports)
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p := pkgImports{path: f[0], imports: make(map[string]bool, len(f)-1)}
		for _, imp := range f[1:] {
			p.imports[imp] = true
		}
		g[p.path] = p
	}
	return g
}

// unexcused returns the packages of g reachable from root without passing
// through an allowed package.
func unexcused(g map[string]pkgImports, root string, allowed []string) []pkgImports {
	skip := make(map[string]bool, len(allowed))
	for _, a := range allowed {
		skip[a] = true
	}
	seen := map[string]bool{root: true}
	queue := []string{root}
	var out []pkgImports
	for len(queue) > 0 {
		p, ok := g[queue[0]]
		queue = queue[1:]
		if !ok {
			continue
		}
		out = append(out, p)
		for imp := range p.imports {
			if !seen[imp] && !skip[imp] {
				seen[imp] = true
				queue = append(queue, imp)
			}
		}
	}
	return out
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
