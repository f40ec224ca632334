package consumer

// slot is one lease as the balancer sees it: workable now, held by Owner
// ("" when free: unowned, expired, or the worker's own from an earlier life).
type slot struct {
	Key     string
	Owner   string
	Counter uint64
}

// share is how many leases a worker should hold: ceil(leases / workers),
// counting the workers that hold a lease plus self.
func share(self string, slots []slot) int {
	workers := map[string]bool{self: true}
	for _, s := range slots {
		if s.Owner != "" {
			workers[s.Owner] = true
		}
	}
	return (len(slots) + len(workers) - 1) / len(workers)
}

// plan returns the leases self should try to take, in order: free leases
// first (in the order given), then leases stolen one at a time from the
// most loaded worker, recounting after each, until self holds its share.
// A worker steals only from one that holds at least two more leases than
// it would, so two workers never trade a lease back and forth.
func plan(self string, slots []slot) []slot {
	target := share(self, slots)
	held := 0
	counts := map[string]int{}
	var free []slot
	for _, s := range slots {
		switch s.Owner {
		case self:
			held++
		case "":
			free = append(free, s)
		default:
			counts[s.Owner]++
		}
	}
	need := target - held
	if need <= 0 {
		return nil
	}
	var out []slot
	n := min(need, len(free))
	out = append(out, free[:n]...)
	held += n
	need -= n
	stolen := map[string]bool{}
	for need > 0 {
		victim, most := "", 0
		for w, c := range counts {
			if c > most || (c == most && w < victim) {
				victim, most = w, c
			}
		}
		if victim == "" || most-held < 2 {
			break
		}
		// The victim's last lease in shard order: its first ones are the
		// oldest shards, likeliest to be parents it is about to finish.
		for j := len(slots) - 1; j >= 0; j-- {
			if s := slots[j]; s.Owner == victim && !stolen[s.Key] {
				stolen[s.Key] = true
				out = append(out, s)
				break
			}
		}
		counts[victim]--
		held++
		need--
	}
	return out
}
