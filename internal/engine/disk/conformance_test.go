package disk

import (
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/enginetest"
)

// testOptions are small enough that the suite crosses segment boundaries and
// sees the background retention act.
func testOptions() Options {
	o := DefaultOptions()
	o.SegmentSize = 4096
	o.IndexInterval = 512
	o.RetentionCheckInterval = 10 * time.Millisecond
	return o
}

func TestConformance(t *testing.T) {
	for _, d := range []Durability{SyncAlways, SyncInterval} {
		t.Run(d.String(), func(t *testing.T) {
			opts := testOptions()
			opts.Durability = d
			dirs := map[engine.Engine]string{}
			enginetest.Run(t, enginetest.Harness{
				New: func(t *testing.T) engine.Engine {
					dir := t.TempDir()
					e, err := Open(dir, opts)
					if err != nil {
						t.Fatal(err)
					}
					dirs[e] = dir
					return e
				},
				Reopen: func(t *testing.T, e engine.Engine) engine.Engine {
					dir := dirs[e]
					if err := e.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
					e2, err := Open(dir, opts)
					if err != nil {
						t.Fatalf("reopen: %v", err)
					}
					dirs[e2] = dir
					return e2
				},
			})
		})
	}
}
