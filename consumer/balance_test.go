package consumer

import (
	"fmt"
	"testing"
)

// leasesOf builds slots: owners[i] holds n[i] leases, then free unowned ones.
func leasesOf(free int, held ...any) []slot {
	var out []slot
	k := 0
	add := func(owner string) {
		out = append(out, slot{Key: fmt.Sprintf("shardId-%012d", k), Owner: owner})
		k++
	}
	for i := 0; i < len(held); i += 2 {
		for range held[i+1].(int) {
			add(held[i].(string))
		}
	}
	for range free {
		add("")
	}
	return out
}

func TestShare(t *testing.T) {
	for _, tc := range []struct {
		name  string
		slots []slot
		want  int
	}{
		{"alone with everything free", leasesOf(64), 64},
		{"one other worker", leasesOf(0, "a", 64), 32},
		{"two others, 64 leases", leasesOf(0, "a", 40, "b", 24), 22},
		{"self counted once", leasesOf(0, "me", 10, "a", 10), 10},
		{"no leases", nil, 0},
		{"one lease, three workers", leasesOf(0, "a", 1, "b", 0), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := share("me", tc.slots); got != tc.want {
				t.Fatalf("share = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name   string
		slots  []slot
		free   int            // free leases expected in the plan
		stolen map[string]int // steals expected per victim
	}{
		{"fresh start takes everything", leasesOf(8), 8, nil},
		{"free leases before stealing, then to within one", leasesOf(3, "a", 10), 3, map[string]int{"a": 3}},
		{"at share: nothing", leasesOf(0, "me", 22, "a", 21, "b", 21), 0, nil},
		{"one below share but balanced: no trade back", leasesOf(0, "me", 21, "a", 22, "b", 21), 0, nil},
		{"two below the most loaded: steal one", leasesOf(0, "me", 20, "a", 22, "b", 22), 0, map[string]int{"a": 1}},
		{"newcomer steals from the most loaded first", leasesOf(0, "a", 40, "b", 24), 0, map[string]int{"a": 19, "b": 2}},
		{"newcomer of three", leasesOf(0, "a", 32, "b", 32), 0, map[string]int{"a": 11, "b": 10}},
		{"single lease held elsewhere", leasesOf(0, "a", 1), 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := plan("me", tc.slots)
			free, stolen := 0, map[string]int{}
			seen := map[string]bool{}
			for _, s := range got {
				if seen[s.Key] {
					t.Fatalf("lease %s planned twice", s.Key)
				}
				seen[s.Key] = true
				switch s.Owner {
				case "":
					free++
				case "me":
					t.Fatalf("planned to take its own lease %s", s.Key)
				default:
					stolen[s.Owner]++
				}
			}
			if free != tc.free || fmt.Sprint(stolen) != fmt.Sprint(orEmpty(tc.stolen)) {
				t.Fatalf("plan took %d free and stole %v; want %d free and %v", free, stolen, tc.free, tc.stolen)
			}
		})
	}
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// TestPlanConverges runs the balancer for three workers in turns, each
// taking what its plan gives it, from every worker holding nothing to all
// leases on one: the leases end evenly spread and nobody moves any more.
func TestPlanConverges(t *testing.T) {
	for _, start := range []string{"", "w0"} {
		owner := map[int]string{}
		for i := range 64 {
			owner[i] = start
		}
		workers := []string{"w0", "w1", "w2"}
		moves := 0
		for round := range 10 {
			moved := false
			for _, w := range workers {
				var slots []slot
				for i := range 64 {
					slots = append(slots, slot{Key: fmt.Sprint(i), Owner: owner[i]})
				}
				for _, s := range plan(w, slots) {
					var i int
					fmt.Sscan(s.Key, &i)
					owner[i] = w
					moved = true
					moves++
				}
			}
			if !moved {
				t.Logf("start %q: stable after %d rounds, %d moves", start, round, moves)
				break
			}
		}
		counts := map[string]int{}
		for _, o := range owner {
			counts[o]++
		}
		for _, w := range workers {
			if c := counts[w]; c < 21 || c > 22 {
				t.Fatalf("start %q: %s holds %d of 64 leases: %v", start, w, c, counts)
			}
		}
	}
}

func TestCheckpointBounds(t *testing.T) {
	cur := Lease{Checkpoint: "100", SubSequenceNumber: 2}
	last := Record{SequenceNumber: "200", SubSequenceNumber: 1}
	for _, tc := range []struct {
		name string
		seq  string
		sub  uint64
		cur  Lease
		ok   bool
	}{
		{"the last record", "200", 1, cur, true},
		{"between", "150", 0, cur, true},
		{"the current checkpoint again", "100", 2, cur, true},
		{"past the last record", "201", 0, cur, false},
		{"past the last sub-record", "200", 2, cur, false},
		{"before the current checkpoint", "99", 9, cur, false},
		{"before the current sub-record", "100", 1, cur, false},
		{"first checkpoint", "1", 0, Lease{Checkpoint: "TRIM_HORIZON"}, true},
		{"not a number", "abc", 0, cur, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkpointBounds(tc.seq, tc.sub, tc.cur, last); (err == nil) != tc.ok {
				t.Fatalf("checkpointBounds(%s, %d) = %v", tc.seq, tc.sub, err)
			}
		})
	}
}
