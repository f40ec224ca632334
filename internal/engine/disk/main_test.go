package disk

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	dirtyAlignedBufs()
	goleak.VerifyTestMain(m)
}

// dirtyAlignedBufs leaves write buffers holding non-zero bytes in their
// pool, as a running engine does, so that a test sees it if zeros meant
// for the disk were taken from there.
func dirtyAlignedBufs() {
	var bps []*[]byte
	for range 4 {
		bp := getAligned(zeroIov)
		b := (*bp)[:cap(*bp)]
		for i := range b {
			b[i] = 0xa5
		}
		bps = append(bps, bp)
	}
	for _, bp := range bps {
		putAligned(bp)
	}
}
