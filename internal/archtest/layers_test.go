package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/latchkey/latchkey/"

// layers ranks every package of the module. A package may import only packages of a
// strictly lower rank, so siblings of one rank (web and api; the stores) import
// neither. Keep it in step with docs/ARCHITECTURE.md; a package missing here fails
// the test, so a new one gets its place on purpose.
var layers = map[string]int{
	"cmd/latchkey":       10,
	"cmd/latchkey-bench": 10,
	"internal/e2e":       10, // the end-to-end suite: tests only, from outside
	"internal/bench":     9,  // the development benchmark, beside the binary, never in it
	"internal/cli":       8,  // commands; wires stores, mail and server together
	"internal/apptest":   8,  // the same wiring, for the tests of auth, api, web and server
	"internal/server":    7,  // routes and middleware
	"internal/oidc":      6,  // the OpenID Connect provider: protocol glue over auth, rendered by web
	"internal/sqlite":    6,  // the stores implement auth.Store; only cli picks one
	"internal/postgres":  6,
	"internal/storetest": 6, // the stores' conformance suite, run from their tests
	"internal/web":       5, // the two surfaces, siblings
	"internal/api":       5,
	"internal/status":    4, // what both surfaces share
	"internal/auth":      3, // the domain
	"internal/config":    1, // settings; reads forward-auth rules with authz
	// Pure packages: the standard library and outside modules only.
	"internal/archtest":      0,
	"internal/authz":         0,
	"internal/keys":          0,
	"internal/mail":          0,
	"internal/mail/smtptest": 0,
	"internal/migrations":    0,
	"internal/password":      0,
	"internal/qrcode":        0,
	"internal/recovery":      0,
	"internal/testenv":       0,
	"internal/totp":          0,
}

// TestLayers parses the imports of every non-test file and checks each import of
// another package of the module against the ranks.
func TestLayers(t *testing.T) {
	root := moduleRoot(t)
	imports := map[string]map[string]bool{} // package → the module's packages it imports
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		if imports[pkg] == nil {
			imports[pkg] = map[string]bool{}
		}
		for _, spec := range f.Imports {
			p, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return err
			}
			if dep, ok := strings.CutPrefix(p, module); ok {
				imports[pkg][dep] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < len(layers)/2 {
		t.Fatalf("found only %d packages under %s: the walk is broken", len(imports), root)
	}
	pkgs := make([]string, 0, len(imports))
	for pkg := range imports {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		rank, ok := layers[pkg]
		if !ok {
			t.Errorf("package %s has no layer: add it to archtest's table and to docs/ARCHITECTURE.md", pkg)
			continue
		}
		for dep := range imports[pkg] {
			depRank, ok := layers[dep]
			switch {
			case !ok:
				t.Errorf("%s imports %s, which has no layer", pkg, dep)
			case depRank >= rank:
				t.Errorf("%s (layer %d) imports %s (layer %d): a package may import only lower layers", pkg, rank, dep, depRank)
			}
		}
	}
}

// TestLayersCatchesAnUpwardImport: the check itself refuses what it should, so a
// broken table cannot pass silently.
func TestLayersCatchesAnUpwardImport(t *testing.T) {
	for _, tt := range []struct{ from, to string }{
		{"internal/web", "internal/api"},
		{"internal/api", "internal/web"},
		{"internal/auth", "internal/sqlite"},
		{"internal/web", "internal/sqlite"},
		{"internal/sqlite", "internal/postgres"},
		{"internal/server", "internal/cli"},
		{"internal/totp", "internal/auth"},
		{"internal/cli", "internal/bench"},
	} {
		if layers[tt.from] > layers[tt.to] {
			t.Errorf("the table lets %s import %s", tt.from, tt.to)
		}
	}
}

// moduleRoot is the directory holding go.mod, found upward from the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
