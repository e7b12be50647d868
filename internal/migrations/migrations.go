// Package migrations reads a store's numbered schema files. Both stores keep their own
// SQL (the dialects differ) but number and order it by the same rule, so the rule
// lives here once.
package migrations

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string // the file name, NNNN_what.sql
	SQL     string
}

// Load returns the *.sql files of dir in fsys in version order. Names are
// NNNN_what.sql starting at 1; a gap, a repeated number or a bad name is a build
// mistake and fails loudly, with store naming the caller in the error.
func Load(fsys fs.FS, dir, store string) ([]Migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		base := strings.TrimPrefix(name, dir+"/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: migration %q is not named NNNN_what.sql", store, base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("%s: migration %q: want version %d", store, m.Name, i+1)
		}
	}
	return ms, nil
}
