package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	good := fstest.MapFS{
		"m/0002_more.sql": {Data: []byte("B")},
		"m/0001_init.sql": {Data: []byte("A")},
		"m/README":        {Data: []byte("ignored")},
	}
	ms, err := Load(good, "m", "test")
	if err != nil || len(ms) != 2 || ms[0].Name != "0001_init.sql" || ms[1].SQL != "B" || ms[1].Version != 2 {
		t.Fatalf("Load = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"repeat":   {"m/0001_a.sql": {}, "m/0001_b.sql": {}},
		"bad name": {"m/init.sql": {}},
		"zero":     {"m/0000_a.sql": {}},
	} {
		if _, err := Load(fsys, "m", "test"); err == nil || !strings.HasPrefix(err.Error(), "test: migration") {
			t.Errorf("%s: Load = %v, want a test: migration error", name, err)
		}
	}
}
